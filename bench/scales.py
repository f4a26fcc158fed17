"""Data sizes per scale. `large` is the size the performance targets are set for; small is about 1/10 of it, tiny about
1/1000 (the smoke test's size, too small for any timing to mean anything)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    fanout_events: int          # case 1/2: E alert events ...
    fanout_users: int           # ... times U eligible users, one channel
    send_events: int            # case 3: D = send_events x send_users queued deliveries
    send_users: int
    send_batches: tuple[int, ...]
    claim_small_queue: int      # case 4: queued rows of the baseline claim ...
    claim_large_queue: int      # ... and of the grown queue
    claim_batch: int
    claim_samples: int          # claims per queue size; the median is reported
    source_events: int          # case 5: events rows read by Phase A
    index_rows: int             # case 5: risk_indices + asset_risk rows
    memory_sizes: tuple[int, int]  # case 6: deliveries sent by one runner, small then large

    @property
    def fanout_rows(self) -> int:
        return self.fanout_events * self.fanout_users

    @property
    def send_rows(self) -> int:
        return self.send_events * self.send_users


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", fanout_events=2, fanout_users=500, send_events=2, send_users=100, send_batches=(500,),
                  claim_small_queue=100, claim_large_queue=1_000, claim_batch=100, claim_samples=5,
                  source_events=100, index_rows=20, memory_sizes=(50, 200)),
    "small": Scale("small", fanout_events=10, fanout_users=10_000, send_events=2, send_users=10_000,
                   send_batches=(500, 100), claim_small_queue=10_000, claim_large_queue=100_000, claim_batch=100,
                   claim_samples=15, source_events=10_000, index_rows=100, memory_sizes=(2_000, 20_000)),
    "medium": Scale("medium", fanout_events=40, fanout_users=10_000, send_events=8, send_users=10_000,
                    send_batches=(500, 100), claim_small_queue=10_000, claim_large_queue=400_000, claim_batch=100,
                    claim_samples=21, source_events=40_000, index_rows=400, memory_sizes=(8_000, 80_000)),
    "large": Scale("large", fanout_events=100, fanout_users=10_000, send_events=20, send_users=10_000,
                   send_batches=(500, 100), claim_small_queue=10_000, claim_large_queue=1_000_000, claim_batch=100,
                   claim_samples=21, source_events=100_000, index_rows=1_000, memory_sizes=(20_000, 200_000)),
}
