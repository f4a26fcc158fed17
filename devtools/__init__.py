"""Tools for developing Alerts v2, never imported by the runner: the throwaway PostgreSQL server
of the tests and `make demo` (embedded_pg), the Phase C worker that tests and the bench start
side by side (claim_worker), and the generator of docs/messages.md (samples)."""
