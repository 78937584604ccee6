"""The reliability campaign's scenarios (issue 9), shared by ``benchmarks/reliability.py``
(full trial counts) and the default test suite (short versions).

Every scenario module exposes ``run(ctx: Context, trials: int) -> ScenarioResult``.
"""
