"""The one stream runtime under every stateful job (counters, flash sale) and the ClickHouse sink.

Read it in this order:

- :mod:`~streams.runtime.job`: what a job is (its inputs, its changelog, its Task per partition);
- :mod:`~streams.runtime.gate`: the pure decisions about each input message (stale offset,
  validation, misroute) -- the same for every job;
- :mod:`~streams.runtime.commit`: the pure commit policy;
- :mod:`~streams.runtime.changelog`: the compacted state topic, created with the inputs' real
  partition count and read back on assignment;
- :mod:`~streams.runtime.runner`: the Kafka shell -- assignment, revoke, lost, one transaction per
  commit, abort and rewind -- in exactly-once or at-least-once mode;
- :mod:`~streams.runtime.run`: ``run_job()``, the process around a runner.

The shape follows Kafka Streams (Task, ProcessorStateManager, StoreChangelogReader, one commit path
per processing mode) and Quix Streams (Application + Checkpoint: flush the sinks, prepare the state,
flush the producer, commit).  The exactly-once model is recorded in docs/decisions/0004-exactly-once.md.
"""
