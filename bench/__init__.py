"""batchdrop's benchmarks (issue 8): ``python -m bench`` (``make bench``) runs them all and rewrites
``docs/benchmarks.md``.

Everything runs on loopback against moto server and the Extend simulator, with the real handlers driven by
the sandbox's Lambda runtime. Each metric is compared with a baseline measured in the same process, and
repeated measurements are reported as medians with their spread, because the machines are small and shared.
One module per metric; ``harness`` makes the sandbox a metric runs on (``sandbox.local.Sandbox``) and
its files; ``request_counter``, ``writeunits`` and ``stats`` measure; ``console`` takes the output;
``report`` holds the sections and writes the document.
"""
