"""Reference answers for tests/gbstats_differential.rs.

Reads the cases the Rust test generated (JSON, path in argv[1]), answers each with the reference
implementations and prints one JSON document on stdout:
  - A/B tests and statistics: gbstats 0.8.0 (TwoSidedTTest, SequentialTwoSidedTTest,
    EffectBayesianABTest, the Statistic classes, compute_theta, check_srm);
  - Holm and Benjamini-Hochberg adjusted p-values: statsmodels' multipletests;
  - bucketing: the growthbook SDK's gbhash, getBucketRanges and chooseVariation.
A case on which the reference raises is answered with {"raised": "<exception class>"}.
"""

import importlib.metadata
import json
import sys

GBSTATS_VERSION = "0.8.0"

version = importlib.metadata.version("gbstats")
if version != GBSTATS_VERSION:
    sys.exit(f"gbstats {GBSTATS_VERSION} is the reference, found {version}: pip install gbstats=={GBSTATS_VERSION}")

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior  # noqa: E402
from gbstats.frequentist.tests import (  # noqa: E402
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (  # noqa: E402
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)
from gbstats.utils import check_srm  # noqa: E402
from growthbook.core import chooseVariation, gbhash, getBucketRanges  # noqa: E402
from statsmodels.stats.multitest import multipletests  # noqa: E402


def number(x):
    """Numbers travel as repr strings: shortest round-trip digits that Rust's correctly rounded
    `str::parse` reads back bit for bit (serde_json's own float parsing may be one ulp off), and
    JSON has no inf or nan."""
    return repr(float(x))


def statistic(spec):
    kind = spec["type"]
    if kind == "mean":
        return SampleMeanStatistic(n=spec["n"], sum=spec["sum"], sum_squares=spec["sum_squares"])
    if kind == "proportion":
        return ProportionStatistic(n=spec["n"], sum=spec["sum"])
    if kind == "ratio":
        return RatioStatistic(
            n=spec["n"],
            m_statistic=statistic(spec["m"]),
            d_statistic=statistic(spec["d"]),
            m_d_sum_of_products=spec["m_d_sum_of_products"],
        )
    if kind == "ra":
        return RegressionAdjustedStatistic(
            n=spec["n"],
            post_statistic=statistic(spec["post"]),
            pre_statistic=statistic(spec["pre"]),
            post_pre_sum_of_products=spec["post_pre_sum_of_products"],
            theta=0,
        )
    raise ValueError(kind)


def describe(stat):
    return {
        "n": stat.n,
        "mean": number(stat.mean),
        "unadjusted_mean": number(stat.unadjusted_mean),
        "variance": number(stat.variance),
        "stddev": number(stat.stddev),
    }


def ab_test(case):
    a, b = statistic(case["a"]), statistic(case["b"])
    base = {
        "difference_type": case["difference_type"],
        "traffic_proportion_b": case["traffic_proportion_b"],
        "phase_length_days": case["phase_length_days"],
    }
    engine = case["engine"]
    if engine == "frequentist":
        test = TwoSidedTTest(a, b, FrequentistConfig(**base, alpha=case["alpha"]))
    elif engine == "sequential":
        config = SequentialConfig(
            **base, alpha=case["alpha"], sequential_tuning_parameter=case["sequential_tuning_parameter"]
        )
        test = SequentialTwoSidedTTest(a, b, config)
    else:
        prior = case["prior"]
        config = EffectBayesianConfig(
            **base,
            inverse=case["inverse"],
            alpha=case["alpha"],
            prior_effect=GaussianPrior(mean=prior["mean"], variance=prior["variance"], proper=prior["proper"]),
            prior_type=prior["scale"],
        )
        test = EffectBayesianABTest(a, b, config)
    result = test.compute_result()
    answer = {
        "expected": number(result.expected),
        "ci": [number(x) for x in result.ci],
        "uplift_mean": number(result.uplift.mean),
        "uplift_stddev": number(result.uplift.stddev),
        "error_message": result.error_message,
        # The statistics as the test used them: after compute_theta, or the post-period ones.
        "stat_a": describe(test.stat_a),
        "stat_b": describe(test.stat_b),
    }
    if engine == "bayesian":
        answer["chance_to_win"] = number(result.chance_to_win)
        answer["risk"] = [number(x) for x in result.risk]
        answer["risk_type"] = result.risk_type
    else:
        answer["p_value"] = number(result.p_value)
    if case["a"]["type"] == "ra":
        answer["theta"] = number(compute_theta(statistic(case["a"]), statistic(case["b"])))
    return answer


def guarded(f, case):
    try:
        return f(case)
    except Exception as e:  # the Rust side checks which cases raise, and what it answers there
        return {"raised": type(e).__name__}


def multiple(case):
    p = case["p_values"]
    return {
        "holm": [number(x) for x in multipletests(p, method="holm")[1]],
        "benjamini_hochberg": [number(x) for x in multipletests(p, method="fdr_bh")[1]],
    }


def ranges(case):
    r = getBucketRanges(case["num_variations"], case["coverage"], case["weights"])
    return {
        "ranges": [[number(lo), number(hi)] for lo, hi in r],
        "chosen": [chooseVariation(n, r) for n in case["n"]],
    }


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    answers = {
        "gbstats_version": version,
        "tests": [guarded(ab_test, c) for c in cases["tests"]],
        "srm": [guarded(lambda c: {"p_value": number(check_srm(c["users"], c["weights"]))}, c) for c in cases["srm"]],
        "multiple": [guarded(multiple, c) for c in cases["multiple"]],
        "hash": [number(gbhash(c["seed"], c["value"], c["version"])) for c in cases["hash"]],
        "ranges": [guarded(ranges, c) for c in cases["ranges"]],
    }
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
