"""When to commit: a pure policy, so its trade-off is tested instead of buried in a loop.

A commit is two or three blocking broker round trips.  Committing after every poll keeps answers
fresh (an output is readable under ``read_committed`` only after its commit) but caps throughput;
committing rarely does the opposite.  The rule:

- nothing in the open transaction: nothing to commit;
- a task produced outputs and we are caught up (the poll did not fill a whole batch): commit now,
  someone is waiting for them (a closed window's snapshot, a buyer's answer);
- otherwise commit once ``interval_ms`` has passed, or ``backlog_interval_ms`` while we are behind
  (full batches): fewer commits let a backlog drain faster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommitPolicy:
    interval_ms: int = 500
    backlog_interval_ms: int = 1000
    commit_outputs_at_once: bool = True

    def due(self, *, pending: bool, since_last_ms: float, backlog: bool, produced: bool) -> bool:
        """Whether to commit the open transaction now."""
        if not pending:
            return False
        if produced and self.commit_outputs_at_once and not backlog:
            return True
        return since_last_ms >= (self.backlog_interval_ms if backlog else self.interval_ms)
