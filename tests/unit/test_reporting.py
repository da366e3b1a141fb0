"""tfaux.reporting on hand-made results dicts: verdicts where the statistics put them, budget
marks only outside the tolerance, older runs still render, plots are written."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from tfaux import evidence, reporting
from tfaux.statistics import NO_DIFFERENCE

PGD = "PGD-10 ε=0.03"
N = 200


def variant_result(clean: float, pgd: float, fgsm: float | None = None) -> dict:
    """A variant's results as an older run wrote them (none of the budget/selection keys)."""
    fgsm = (clean + pgd) / 2 if fgsm is None else fgsm
    return {
        "val_accuracy": clean,
        "test_accuracy": clean,
        "fgsm_accuracy": {"0.03": fgsm},
        "pgd_accuracy": pgd,
        "pgd_attack": PGD,
        "trustworthy": True,
        "robustness": {
            "clean": clean,
            "fgsm": {"0.03": fgsm},
            "attacks": {"FGSM ε=0.03": fgsm, PGD: pgd},
            "examples": {"FGSM ε=0.03": N, PGD: N},
            "num_examples": N,
            "curves": {"fgsm": {"0": clean, "0.03": fgsm}, "pgd": {"0": clean, "0.03": pgd}},
            "sanity": [{"name": "more steps", "passed": True, "detail": "ok"}],
        },
        "test_examples": N,
        "train_seconds": 12.0,
        "parameters": 1000,
        "deployed_parameters": 900,
    }


def old_results(variants: dict) -> dict:
    return {
        "recipe": "toy",
        "run": "toy-1",
        "dataset": {"name": "mnist", "num_classes": 10},
        "variants": variants,
        "best_variant": next(iter(variants)),
        "best_by": "val_accuracy",
    }


def flipped(base: np.ndarray, breaks: range, fixes: range) -> np.ndarray:
    """`base` with the examples in `breaks` made wrong and those in `fixes` made right."""
    out = base.copy()
    out[list(breaks)] = False
    out[list(fixes)] = True
    return out


# Per test example, who is right. Baseline: 150/200 clean, 80/200 under PGD.
# aux: fixes 30 and breaks 5 clean (better), fixes and breaks 10 under PGD (no difference).
# trades: the baseline's clean answers; breaks 25 and fixes 2 under PGD (worse).
BASE_CLEAN, BASE_ROBUST = np.arange(N) < 150, np.arange(N) < 80
CORRECT = {
    "none": {"clean": BASE_CLEAN, "robust": BASE_ROBUST},
    "aux": {
        "clean": flipped(BASE_CLEAN, range(5), range(150, 180)),
        "robust": flipped(BASE_ROBUST, range(10), range(80, 90)),
    },
    "trades": {
        "clean": BASE_CLEAN.copy(),
        "robust": flipped(BASE_ROBUST, range(25), range(80, 82)),
    },
}
PASSES = {"none": 1_000_000, "aux": 1_010_000, "trades": 1_120_000}


def new_results(run_dir, tolerance: float = 0.02) -> dict:
    """A run with every key the runner now writes, and the per-example files on disk."""
    (run_dir / "variants").mkdir(parents=True, exist_ok=True)
    variants = {}
    for name, arrays in CORRECT.items():
        np.savez(run_dir / "variants" / f"{name}.correct.npz", **arrays)
        r = variant_result(arrays["clean"].mean(), arrays["robust"].mean())
        relative = PASSES[name] / PASSES["none"]
        r["selection"] = {
            "rule": "best_robust",
            "metric": "val_pgd_accuracy",
            "epoch": 7,
            "value": 0.4,
            "epochs_run": 16,
        }
        r["budget"] = {
            "optimizer_steps": PASSES[name] // 128,
            "example_passes": PASSES[name],
            "train_seconds": 12.0,
            "relative": relative,
            "within": abs(relative - 1) <= tolerance,
        }
        r["correct"] = f"{name}.correct.npz"
        variants[name] = r
    results = old_results(variants)
    results["baseline"] = "none"
    results["budget_rule"] = {"quantity": "example_passes", "tolerance": tolerance}
    return results


def table_rows(markdown: str, title: str) -> dict[str, list[str]]:
    """The rows of the Markdown table under the heading starting with `title`, by first cell."""
    section = markdown.split(title, 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("|")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[2:]}


def mcnemar(variant: np.ndarray, baseline: np.ndarray) -> float:
    """McNemar's exact p from scipy directly: the discordant pairs under Binomial(b + c, 1/2)."""
    b, c = int(np.sum(variant & ~baseline)), int(np.sum(~variant & baseline))
    return stats.binomtest(b, b + c, 0.5).pvalue if b + c else 1.0


# === One run ===


def test_comparison_table_says_better_no_difference_and_worse_where_the_statistics_do(tmp_path):
    results = new_results(tmp_path)
    reporting.write_report(tmp_path, results)
    rows = table_rows((tmp_path / "results.md").read_text(), "## Compared with the baseline none")
    # Columns: clean Δ, CI, p, verdict, then the same for PGD.
    assert rows["none"][3] == rows["none"][7] == "baseline"
    assert rows["aux"][0] == "+12.50" and rows["aux"][3] == "better"
    assert rows["aux"][7] == NO_DIFFERENCE and rows["aux"][6] == "1 (1)"
    assert rows["trades"][0] == "+0.00" and rows["trades"][3] == NO_DIFFERENCE
    assert rows["trades"][4] == "−11.50" and rows["trades"][7] == "worse"
    # results.json keeps the numbers behind the words; p-values as scipy computes them.
    saved = json.loads((tmp_path / "results.json").read_text())["comparison"]
    for name in ("aux", "trades"):
        for key in ("clean", "robust"):
            test = saved["variants"][name][key]
            expected = mcnemar(CORRECT[name][key], CORRECT["none"][key])
            assert test["p_value"] == pytest.approx(expected)
            assert test["difference"] == pytest.approx(
                CORRECT[name][key].mean() - CORRECT["none"][key].mean()
            )
    assert saved["variants"]["aux"]["clean"]["p_value"] < 1e-4
    assert saved["variants"]["aux"]["clean"]["low"] > 0
    assert saved["variants"]["trades"]["robust"]["high"] < 0


def test_new_columns_show_the_selected_epoch_and_the_budget(tmp_path):
    table = reporting.markdown_table(new_results(tmp_path))
    header = table.splitlines()[0]
    assert "selected epoch (rule)" in header and "optimizer steps" in header
    rows = table_rows("## x\n" + table, "## x")
    assert all(any(c.startswith("7/16 best_robust (") for c in cells) for cells in rows.values())
    assert "rolled back" not in table
    results = new_results(tmp_path)
    results["variants"]["aux"]["selection"]["rolled_back_from"] = 9  # a guard's rollback
    rows = table_rows("## x\n" + reporting.markdown_table(results), "## x")
    assert "7/16 best_robust (40.0), rolled back from 9" in rows["aux"]
    assert "1M" in rows["none (best) (baseline)"] and "7.81k" in rows["none (best) (baseline)"]
    assert "example passes as the baseline (none) within ±2 %" in table


def test_budget_mark_appears_only_outside_the_tolerance(tmp_path):
    rows = table_rows("## x\n" + reporting.markdown_table(new_results(tmp_path)), "## x")
    assert "1.12M **+12 % budget**" in rows["trades"]
    assert not any("budget" in cell for cell in rows["aux"])  # +1 %, inside ±2 %
    looser = reporting.markdown_table(new_results(tmp_path, tolerance=0.15))
    assert "% budget**" not in looser


def test_a_run_without_a_budget_rule_marks_nothing(tmp_path):
    results = new_results(tmp_path)
    results["budget_rule"] = {"quantity": None, "tolerance": 0.02}
    for r in results["variants"].values():
        r["budget"].update(relative=None, within=None)
    table = reporting.markdown_table(results)
    assert "% budget**" not in table and "no rule declared" in table


def test_an_older_run_without_the_new_keys_still_renders(tmp_path):
    results = old_results({"none": variant_result(0.75, 0.40), "aux": variant_result(0.8, 0.4)})
    reporting.write_report(tmp_path, results)
    report = (tmp_path / "results.md").read_text()
    assert "| none (best) | 75.00 | 75.00 [" in report  # its Wilson interval follows
    assert "Compared with the baseline" not in report and "selected epoch" not in report
    assert "comparison" not in json.loads((tmp_path / "results.json").read_text())
    for name in ("accuracy.png", "robustness_curves.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_the_monitoring_table_shows_each_monitors_seconds_and_their_share(tmp_path):
    results = new_results(tmp_path)  # 12 training seconds each
    results["variants"]["none"]["monitor_seconds"] = {"images": 0.6}
    results["variants"]["trades"]["monitor_seconds"] = {"val_pgd": 2.4, "images": 0.6}
    reporting.write_report(tmp_path, results)  # aux: trained before monitors were timed
    report = (tmp_path / "results.md").read_text()
    header = next(
        line for line in report.split("## Monitoring cost")[1].splitlines() if "|" in line
    )
    assert header == "| variant | train s | validation PGD s | image panels s | monitoring |"
    rows = table_rows(report, "## Monitoring cost")
    assert rows == {
        "none": ["12", "–", "0.6", "0.6 (5 %)"],
        "trades": ["12", "2.4", "0.6", "3.0 (25 %)"],
    }
    older = old_results({"none": variant_result(0.75, 0.40)})
    assert reporting.monitoring_table(older) == ""


def test_per_example_results_of_other_images_are_an_error_naming_the_variant(tmp_path):
    results = new_results(tmp_path)
    np.savez(tmp_path / "variants" / "aux.correct.npz", clean=BASE_CLEAN[:100], robust=BASE_ROBUST)
    with pytest.raises(ValueError, match="aux's and none's clean correctness"):
        reporting.baseline_comparison(results, evidence.load_correct(tmp_path, results))


def test_variants_under_different_headline_attacks_are_not_compared(tmp_path):
    results = new_results(tmp_path)
    aux = results["variants"]["aux"]
    aux.update(robust_attack="AutoAttack ε=0.1", robust_accuracy=aux["pgd_accuracy"])
    aux["robustness"]["examples"]["AutoAttack ε=0.1"] = len(BASE_ROBUST)
    with pytest.raises(ValueError, match="the same headline attack"):
        reporting.baseline_comparison(results, evidence.load_correct(tmp_path, results))


def test_accuracy_plot_is_written_with_and_without_per_example_results(tmp_path):
    results = new_results(tmp_path)
    correct = evidence.load_correct(tmp_path, results)
    assert set(correct) == {"none", "aux", "trades"}
    np.testing.assert_array_equal(correct["aux"]["robust"], CORRECT["aux"]["robust"])
    with_arrays = reporting.accuracy_plot(results, tmp_path / "a.png", correct)
    from_counts = reporting.accuracy_plot(results, tmp_path / "b.png")
    # Both draw the same Wilson intervals: the arrays and accuracy × n give the same counts.
    assert with_arrays.read_bytes() == from_counts.read_bytes()


def test_load_correct_returns_every_saved_column_and_old_files_still_load(tmp_path):
    results = new_results(tmp_path)
    five_crop = np.linspace(0, 1, 6).repeat(40)[:N]  # fractions of each image's 5 crops right
    extra = {
        "FGSM ε=0.03": BASE_CLEAN & BASE_ROBUST,
        "random_crop": BASE_ROBUST,
        "five_crop": five_crop,
    }
    np.savez(tmp_path / "variants" / "aux.correct.npz", **CORRECT["aux"], **extra)
    correct = evidence.load_correct(tmp_path, results)
    assert list(correct["aux"]) == ["clean", "robust", "FGSM ε=0.03", "random_crop", "five_crop"]
    assert list(correct["none"]) == ["clean", "robust"]  # an older run's file
    for key, array in {**CORRECT["aux"], **extra}.items():
        np.testing.assert_array_equal(correct["aux"][key], array)
        assert correct["aux"][key].dtype == array.dtype, key  # fractions stay fractions
    # The comparison with the baseline reads clean and robust as before.
    assert reporting.baseline_comparison(results, correct)["variants"]["aux"]["clean"]["n"] == N


# === Over seeds ===

# seed → variant → (clean, robust): aux about +1 point clean in every seed, trades +9 to +11
# points robust in every seed; the seeds move all variants together.
SEED_ACCURACY = {
    0: {"none": (0.80, 0.40), "aux": (0.81, 0.41), "trades": (0.78, 0.50)},
    1: {"none": (0.90, 0.35), "aux": (0.912, 0.33), "trades": (0.88, 0.46)},
    2: {"none": (0.85, 0.38), "aux": (0.859, 0.40), "trades": (0.86, 0.47)},
}


def per_seed_runs(tmp_path, seeds=(0, 1, 2), with_baseline=True) -> dict:
    """{seed: result} as the runner passes to `seed_summary` (run_dir and results)."""
    runs = {}
    for seed in seeds:
        variants = {n: variant_result(*acc) for n, acc in SEED_ACCURACY[seed].items()}
        results = old_results(variants)
        if with_baseline:
            results["baseline"] = "none"
        runs[seed] = SimpleNamespace(run_dir=tmp_path / f"toy-seed{seed}-1", results=results)
    return runs


def column(variant: str, index: int, seeds=(0, 1, 2)) -> list[float]:
    return [SEED_ACCURACY[s][variant][index] for s in seeds]


def test_seed_summary_has_t_intervals_and_paired_differences_from_scipy(tmp_path):
    summary = reporting.seed_summary("toy", "toy-1", per_seed_runs(tmp_path))
    clean = summary["variants"]["aux"]["clean"]
    values = column("aux", 0)
    half = stats.t.ppf(0.975, df=2) * np.std(values, ddof=1) / math.sqrt(3)
    assert clean["values"] == values and clean["std"] == pytest.approx(np.std(values, ddof=1))
    assert (clean["low"], clean["high"]) == pytest.approx(
        (np.mean(values) - half, np.mean(values) + half)
    )
    reference = stats.ttest_rel(column("aux", 0), column("none", 0))
    ci = reference.confidence_interval(0.95)
    d = summary["comparison"]["aux"]["clean"]
    assert (d["low"], d["high"], d["p_value"]) == pytest.approx((ci.low, ci.high, reference.pvalue))
    assert d["n"] == 3 and d["verdict"] == "better"
    assert summary["comparison"]["trades"][PGD]["verdict"] == "better"
    assert summary["comparison"]["aux"][PGD]["verdict"] == NO_DIFFERENCE
    assert "none" not in summary["comparison"]


def test_seed_report_shows_ci_and_verdicts(tmp_path):
    summary = reporting.seed_summary("toy", "toy-1", per_seed_runs(tmp_path))
    reporting.write_seed_report(tmp_path, summary)
    report = (tmp_path / "results.md").read_text()
    assert "# toy (toy-1): seeds 0, 1, 2" in report
    assert "Mean ± 95 % CI (Student t) over seeds" in report
    _, high = stats.t.interval(0.95, 2, loc=0.85, scale=stats.sem(column("none", 0)))
    assert f"| none | 85.00 ± {100 * (high - 0.85):.2f} |" in report
    section = report.split("## Compared with the baseline none", 1)[1]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| aux")]
    verdicts = {cells[1]: cells[-1].rstrip(" |") for cells in rows}
    assert verdicts["clean"] == "better" and verdicts[PGD] == NO_DIFFERENCE
    saved = json.loads(
        (tmp_path / "results.json").read_text(), parse_constant=pytest.fail
    )  # no NaN in the JSON
    assert saved["variants"]["none"]["clean"]["std"] > 0
    assert (tmp_path / "seeds.png").stat().st_size > 10_000


def test_one_seed_shows_means_alone_and_no_verdict(tmp_path):
    summary = reporting.seed_summary("toy", "toy-1", per_seed_runs(tmp_path, seeds=(0,)))
    assert summary["variants"]["aux"]["clean"]["low"] is None
    d = summary["comparison"]["aux"]["clean"]
    assert d["low"] is None and d["p_value"] is None and d["verdict"] == NO_DIFFERENCE
    reporting.write_seed_report(tmp_path, summary)
    report = (tmp_path / "results.md").read_text()
    assert "| none | 80.00 | 60.00 | 40.00 |" in report  # clean, FGSM, PGD: no "±"
    assert (
        "| aux | clean | +1.00 | – | – | – | none: 1 seed(s) without per-image records | no "
        in report
    )
    json.loads((tmp_path / "results.json").read_text(), parse_constant=pytest.fail)


def test_seed_runs_without_a_baseline_still_render(tmp_path):
    summary = reporting.seed_summary("toy", "toy-1", per_seed_runs(tmp_path, with_baseline=False))
    assert "comparison" not in summary
    reporting.write_seed_report(tmp_path, summary)
    assert "Compared with the baseline" not in (tmp_path / "results.md").read_text()
    assert (tmp_path / "seeds.png").exists()


def test_mean_ci_table_cells_are_mean_plus_minus_the_t_half_width():
    rows = {"a": {"clean": [0.90, 0.92], "pgd": [0.5]}, "b": {"pgd": [0.4, 0.4, 0.4]}}
    half = 100 * stats.t.ppf(0.975, df=1) * np.std([0.90, 0.92], ddof=1) / math.sqrt(2)
    assert reporting.mean_ci_table(rows).splitlines() == [
        "| model | clean | pgd |",
        "|---|---|---|",
        f"| a | 91.00 ± {half:.2f} | 50.00 |",
        "| b | – | 40.00 ± 0.00 |",
    ]
