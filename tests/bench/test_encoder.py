"""bench/encoder's tables (the bench itself trains an encoder and replays a day of the demo
world; its pieces that turn the replay's rows into the published tables are checked here)."""

from __future__ import annotations

import doctest

from tests.bench.loader import load_bench


def _bench():
    return load_bench("encoder")


def test_doctests():
    assert doctest.testmod(_bench()).failed == 0


def test_tables_show_every_model_in_order_with_intervals_verdicts_and_segments():
    bench = _bench()
    models = ("als", "mspa", "fused", "mspa_base", "popularity")
    verdict = {"mspa": None, "fused": True, "mspa_base": False, "als": True, "popularity": True}
    diff = {"fused": 0.05, "als": -0.1, "popularity": -0.2, "mspa_base": -0.01, "mspa": None}
    def r(metric, model, **extra):  # noqa: E306
        return {"metric": metric, "model": model, "value": 0.5, "low": 0.4, "high": 0.6,
                "significant": verdict[model], "diff": diff[model], "users": 30, **extra}
    body = {"metrics": [r(m, x) for m in ("uauc_click", "hr@100") for x in models],
            "segments": [r("uauc_click", x, segment=s) for s in ("new_to_user", "cold")
                         for x in models]}
    text = bench.tables(body)
    lines = text.splitlines()
    assert lines[0] == "| metric | mspa | mspa_base | fused | popularity | als |"
    uauc = next(line for line in lines if line.startswith("| uauc_click |"))
    assert uauc.split(" | ")[1:] == ["0.500 [0.400, 0.600]", "0.500 [0.400, 0.600] ≈",
                                     "0.500 [0.400, 0.600] ▲", "0.500 [0.400, 0.600] ▼",
                                     "0.500 [0.400, 0.600] ▼ |"]
    assert "| new_to_user | uauc_click |" in text and "| cold | uauc_click |" in text
    assert "hr@1000" not in text  # a metric nobody measured is not a row
