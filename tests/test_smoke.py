from tests import seed
from tests.conftest import run_runner


def test_runner_all_sends_into_outbox(db_url, conn, tmp_path):
    seed.population(conn, users=3, events=2)
    outbox = tmp_path / "outbox.jsonl"
    result = run_runner(db_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{outbox}"})
    assert result.returncode == 0, result.stderr
    assert len(outbox.read_text().splitlines()) == 6
