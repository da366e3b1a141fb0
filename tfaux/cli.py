"""`python recipes/run.py`: run a recipe by name, with typed `--set key=value` overrides.

One `argparse` parser, one subcommand per job: `run NAME` (the default: a first argument that is
not a command is a recipe, so `python recipes/run.py NAME` and `python recipes/run.py` work),
`tune NAME` (search the aux-loss weights λ of a variant, see `tfaux.tune`), `evaluate
SAVEDMODEL_DIR` (AutoAttack on an export), `predict SAVEDMODEL_DIR IMAGE...` and `export-tflite
SAVEDMODEL_DIR` (see `tfaux.deploy`). NAME may also be the path of a .py file defining `RECIPE`,
such as the `best_recipe.py` a search writes.

Bad input (unknown command, recipe, key, backbone, task or dataset; a wrong type; ε < 0;
missing data) prints one line saying what is wrong and what to do, and exits with status 2. Set
TFAUX_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from tfaux.config import Recipe
from tfaux.names import unknown_name
from tfaux.overrides import apply_overrides, field_paths

DEFAULT_RECIPE = "seed000_ft"
# In the order `--help` lists them; "run" is what a first argument that is no command means.
COMMANDS = ("run", "tune", "evaluate", "predict", "export-tflite")
USAGE_ERROR = 2
TRAINING_FAILED = 1


def discover(recipes_dir: Path) -> dict[str, tuple[Recipe, str]]:
    """Recipes defined as `RECIPE` in the .py files of `recipes_dir`: name → (recipe, doc)."""
    found = {}
    for path in sorted(recipes_dir.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"tfaux_recipes.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        recipe = getattr(module, "RECIPE", None)
        if isinstance(recipe, Recipe):
            found[recipe.name] = (recipe, (module.__doc__ or "").strip())
    return found


def resolve(name: str, assignments: list[str], recipes: dict, *, check: bool = True) -> Recipe:
    """The named recipe (or the `RECIPE` of a .py file) with overrides applied and, with
    `check`, every name in it checked up front (registries import TensorFlow; `--keys` does not
    need them)."""
    if name.endswith(".py"):
        recipe = load_recipe_file(Path(name))
    elif name not in recipes:
        raise unknown_name("recipe", name, recipes, cutoff=0.4)
    else:
        recipe = recipes[name][0]
    declared, dataset = len(recipe.claims), recipe.data.dataset
    recipe = apply_overrides(recipe, assignments)
    if check:
        from tfaux.experiment import check_recipe  # imports TensorFlow: once a recipe is chosen

        check_recipe(recipe)
    if declared and recipe.data.dataset != dataset:  # on stdout: stderr is a failure's line
        print(
            f"note: the recipe's {declared} claims are about {dataset}; none is judged on "
            f"{recipe.data.dataset}"
        )
    elif len(recipe.claims) < declared:
        print(
            f"note: {declared - len(recipe.claims)} of the recipe's {declared} claims are not "
            "tested by this run (its variants or metrics are not in it)"
        )
    return recipe


def load_recipe_file(path: Path) -> Recipe:
    """The `RECIPE` defined by a recipe file anywhere (e.g. a λ search's best_recipe.py)."""
    if not path.is_file():
        raise ValueError(
            f"Expected a recipe name or an existing .py file defining RECIPE. Received: {path}"
        )
    spec = importlib.util.spec_from_file_location(f"tfaux_recipe_file.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipe = getattr(module, "RECIPE", None)
    if not isinstance(recipe, Recipe):
        raise ValueError(
            f"Expected {path} to define RECIPE = Recipe(...). Received: RECIPE of type "
            f"{type(recipe).__name__}"
        )
    return recipe


def main(argv: list[str] | None = None, *, recipes_dir: Path) -> int:
    """`python recipes/run.py [COMMAND] ...`; returns the exit status (0; 1: a run or search
    failed; 2: bad input, in one line; 130: interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
            if argv and (typo := _command_typo(argv[0], recipes_dir)):
                return _fail(typo)
            argv = ["run", *argv]  # a recipe name or file, an option, or nothing
        args = _parser(recipes_dir).parse_args(argv)
        return _attempt(lambda: args.execute(args), interrupted=args.interrupted)


def _command_typo(word: str, recipes_dir: Path) -> ValueError | None:
    """The one-line error for a misspelt command ("tunne seed000_ft"), which would otherwise
    run as a recipe named "tunne" and fail on its second argument; None for anything else."""
    if word.startswith("-") or word.endswith(".py"):
        return None
    if not difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.75):
        return None
    if word in discover(recipes_dir):
        return None
    return unknown_name("command", word, COMMANDS, cutoff=0.75)


def _parser(recipes_dir: Path) -> argparse.ArgumentParser:
    """Every command's parser: each subcommand sets `execute` (its function of the parsed
    arguments) and `interrupted` (what to do after Ctrl-C)."""
    parser = argparse.ArgumentParser(
        prog="python recipes/run.py",
        usage="%(prog)s [-h] [COMMAND] ...",
        description="Train, evaluate and export the variants of a tfaux recipe.\n\n"
        "COMMAND defaults to run: a first argument that is not a command is a recipe, so\n"
        "`python recipes/run.py seed000_ft` is `python recipes/run.py run seed000_ft`.",
        epilog="examples:\n"
        "  python recipes/run.py                      # the default recipe (seed 000)\n"
        "  python recipes/run.py --list\n"
        "  python recipes/run.py seed000_ft --set training.epochs=2 --set data.train_size=2000\n"
        "  python recipes/run.py --keys               # every key --set accepts\n"
        "  python recipes/run.py run --help           # every option of a run\n"
        "  python recipes/run.py tune seed000_ft      # search λ with KerasTuner (tune --help)\n"
        "  python recipes/run.py runs/seed000_ft-tune/best_recipe.py\n"
        "  python recipes/run.py predict savedmodels/<run> shoe.png   # predict --help\n"
        "  python recipes/run.py export-tflite savedmodels/<run>      # export-tflite --help\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(recipes_dir=recipes_dir)
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    _add_run(commands)
    _add_tune(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_export_tflite(commands)
    return parser


def _add_command(commands, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand whose --help keeps its examples' line breaks (`prog` spelled out: argparse
    would build it from the top-level usage)."""
    return commands.add_parser(
        name,
        prog=f"python recipes/run.py {name}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning as the user's one line ("warning: none: robustness claim not
    trustworthy: ..."), without the file, line number and source line of the library."""
    print(f"warning: {' '.join(str(message).split())}", file=file or sys.stderr)


def _attempt(command, *, interrupted: str) -> int:
    """Runs `command()` (which returns the exit status) and turns failures into one line: bad
    input or missing data → 2, a run that failed (diverged, its trials failed) → 1, Ctrl-C → 130
    with `interrupted` saying how to continue."""
    try:
        return command()
    except (ValueError, TypeError) as error:
        return _fail(error)
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return 130
    except Exception as error:
        # Imported only now: they import TensorFlow, which `--list` and `--keys` never need.
        from tfaux.data import DataNotFoundError
        from tfaux.training.resume import TrainingFailedError

        if isinstance(error, DataNotFoundError):
            return _fail(error)
        if isinstance(error, TrainingFailedError):  # not a usage error: the run itself failed
            return _fail(error, status=TRAINING_FAILED)
        raise


def _add_overrides(parser: argparse.ArgumentParser, example: str) -> None:
    """`--set KEY=VALUE`, repeatable, shared by the run and tune commands."""
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a recipe field, e.g. {example}",
    )


def _fail(error: Exception, status: int = USAGE_ERROR) -> int:
    """`error` as the user's one line and `status`; TFAUX_DEBUG=1 raises it instead."""
    if os.environ.get("TFAUX_DEBUG"):
        raise error
    message = " ".join(str(error).split())
    print(f"error: {message}", file=sys.stderr)
    return status


# === Run a recipe ===


def _add_run(commands) -> None:
    parser = _add_command(
        commands,
        "run",
        help="train, evaluate and export a recipe's variants (the default command)",
        description="Train, evaluate and export the variants of a tfaux recipe. The same "
        "command resumes an unfinished run.",
        epilog="examples:\n"
        "  python recipes/run.py                      # the default recipe (seed 000)\n"
        "  python recipes/run.py --list\n"
        "  python recipes/run.py seed000_ft --set training.epochs=2 --set data.train_size=2000\n"
        "  python recipes/run.py --keys               # every key --set accepts\n"
        "  python recipes/run.py runs/seed000_ft-tune/best_recipe.py\n",
    )
    parser.add_argument(
        "recipe",
        nargs="?",
        default=DEFAULT_RECIPE,
        help=f"recipe name or .py file defining RECIPE (default: {DEFAULT_RECIPE})",
    )
    _add_overrides(parser, "training.epochs=3")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--keys", action="store_true", help="list the recipe's keys and exit")
    parser.add_argument(
        "--fresh", action="store_true", help="start a new run instead of resuming an unfinished one"
    )
    parser.add_argument("--runs-dir", default="runs", help="parent of run directories")
    parser.add_argument(
        "--savedmodels-dir", default="savedmodels", help="parent of exported SavedModels"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(
        execute=_run, interrupted="run the same command again to resume from the last backup"
    )


def _run(args: argparse.Namespace) -> int:
    recipes = discover(args.recipes_dir)
    if args.list:
        for name, (recipe, doc) in recipes.items():
            default = " (default)" if name == DEFAULT_RECIPE else ""
            print(f"{name}{default}: {doc.splitlines()[0] if doc else recipe.description}")
        return 0
    if args.keys:
        print("\n".join(field_paths(resolve(args.recipe, args.assignments, recipes, check=False))))
        return 0
    recipe = resolve(args.recipe, args.assignments, recipes)
    from tfaux.distribute import create_strategy, is_chief
    from tfaux.export import METADATA
    from tfaux.runner import run

    # Keras traces a step function per batch shape; small data (an image folder of a few
    # hundred images, whose splits end in odd-sized batches) trips TensorFlow's "triggered
    # tf.function retracing" warning, which nobody running a recipe can act on.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # First TF work: multi_worker configures collectives at start-up and blocks until every
    # worker of TF_CONFIG has joined.
    create_strategy(recipe.training.strategy)
    result = run(
        recipe,
        runs_dir=args.runs_dir,
        savedmodels_dir=args.savedmodels_dir,
        fresh=args.fresh,
        progress=not args.no_progress,
    )
    if not is_chief():
        print(f"worker done: the chief writes the results to {result.run_dir}")
        return 0
    print((result.run_dir / "results.md").read_text())
    print(f"run directory: {result.run_dir}")
    if result.export_dir:
        # The export names its variant: a backbone sweep's summary has no single best variant.
        metadata = json.loads((result.export_dir / METADATA).read_text())
        print(f"exported {metadata['variant']!r} to {result.export_dir}")
    return 0


# === Search λ ===


def _add_tune(commands) -> None:
    parser = _add_command(
        commands,
        "tune",
        help="search a variant's aux-loss weights λ (and ε, m) with KerasTuner",
        description="Search the aux-loss weights λ (and ε, m) of a recipe's variant with "
        "KerasTuner. The same command continues an interrupted search.",
        epilog="examples:\n"
        "  python recipes/run.py tune seed000_ft --set tuning.max_trials=20\n"
        "  python recipes/run.py tune seed000_ft --set tuning.objective=val_pgd_accuracy\n"
        "  python recipes/run.py tune seed000_at --set tuning.variant=fourier@fgsm "
        "--set tuning.eps=0.05,0.2\n"
        "  python recipes/run.py runs/seed000_ft-tune/best_recipe.py   # train the best\n",
    )
    parser.add_argument("recipe", help="recipe name or .py file defining RECIPE")
    _add_overrides(parser, "tuning.max_trials=20 (see --keys of the run command)")
    parser.add_argument(
        "--fresh", action="store_true", help="delete the recipe's search and start over"
    )
    parser.add_argument("--runs-dir", default="runs", help="parent of <recipe>-tune/")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(
        execute=_tune,
        interrupted="run the same command again to continue the search (finished trials are "
        "kept; the interrupted trial resumes from its last epoch backup)",
    )


def _tune(args: argparse.Namespace) -> int:
    recipe = resolve(args.recipe, args.assignments, discover(args.recipes_dir))
    if recipe.training.strategy == "multi_worker":
        raise ValueError(
            "Expected training.strategy 'default' or 'mirrored' for a search (KerasTuner's "
            "trials run in one process). Received: training.strategy='multi_worker'"
        )
    from keras_tuner.src import config as keras_tuner_config  # not public in 1.4.8
    from sklearn.exceptions import ConvergenceWarning

    from tfaux.tune import tune

    # KerasTuner prints every failed trial's traceback (DEBUG defaults to True); it is in the
    # trial's trial.json, and the console gets one line per trial.
    keras_tuner_config.DEBUG = bool(os.environ.get("TFAUX_DEBUG"))
    # Every trial builds a new model, so TensorFlow's "triggered tf.function retracing" warning
    # is expected noise here; so is the Gaussian process's warning that a length scale reached
    # its bound, which few trials make likely and nobody can act on.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    result = tune(recipe, runs_dir=args.runs_dir, fresh=args.fresh, progress=not args.no_progress)
    print(result.table)
    print(f"search directory: {result.search_dir}")
    if result.best_recipe:
        print(f"train the best recipe: python recipes/run.py {result.best_recipe}")
    return 0


# === Deploy: predict, export-tflite ===


def _add_predict(commands) -> None:
    parser = _add_command(
        commands,
        "predict",
        help="classify images with an exported SavedModel",
        description="Classify images with an exported SavedModel: each image's top-k classes "
        "with their names and probabilities. Images are decoded and resized with TensorFlow; "
        "grayscale and RGB are converted to what the export takes.",
        epilog="examples:\n"
        "  python recipes/run.py predict savedmodels/<run> shoe.png shirt.jpg\n"
        "  python recipes/run.py predict savedmodels/<run> batch.npy --top-k 1 --json\n",
    )
    parser.add_argument("savedmodel", help="an export's directory, e.g. savedmodels/<run>")
    parser.add_argument("images", nargs="+", help="PNG or JPEG files, or .npy batches [N, H, W, C]")
    parser.add_argument("--top-k", type=int, default=3, help="classes per image (default: 3)")
    parser.add_argument("--json", action="store_true", help="JSON: one object per image")
    parser.set_defaults(execute=_predict, interrupted="nothing was written")


def _predict(args: argparse.Namespace) -> int:
    from tfaux import deploy

    export = deploy.load(args.savedmodel)
    names, images = deploy.load_images(args.images, export.input_shape)
    rows = deploy.predict(export, images, args.top_k, names=names)
    per_image = [rows[i : i + args.top_k] for i in range(0, len(rows), args.top_k)]
    if args.json:
        print(json.dumps([_prediction_json(top) for top in per_image], indent=2))
        return 0
    print("| image | rank | class | name | probability |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.image} | {row.rank} | {row.index} | {row.name} | {row.probability:.4f} |")
    return 0


def _prediction_json(top: list) -> dict:
    return {
        "image": top[0].image,
        "top_k": [
            {"rank": row.rank, "class": row.index, "name": row.name, "probability": row.probability}
            for row in top
        ],
    }


def _add_export_tflite(commands) -> None:
    parser = _add_command(
        commands,
        "export-tflite",
        help="convert an exported SavedModel to TensorFlow Lite and compare the two",
        description="Convert an exported SavedModel to TensorFlow Lite (float32, and int8 with "
        "dynamic-range quantization), then compare both with the SavedModel on test images: "
        "size, latency, largest logit difference and test accuracy.",
        epilog="examples:\n"
        "  python recipes/run.py export-tflite savedmodels/<run>\n"
        "  python recipes/run.py export-tflite savedmodels/<run> --out phone/ "
        "--test-examples 10000\n",
    )
    parser.add_argument("savedmodel", help="an export's directory, e.g. savedmodels/<run>")
    parser.add_argument("--out", help="output directory (default: SAVEDMODEL_DIR/tflite)")
    parser.add_argument(
        "--test-examples",
        type=int,
        default=1000,
        help="first N test images to measure on (default: 1000; 0: 64 random images, no accuracy)",
    )
    parser.add_argument(
        "--dataset", help="dataset of the test images (default: the export's, from metadata.json)"
    )
    parser.set_defaults(
        execute=_export_tflite,
        interrupted="run the same command again (finished .tflite files are complete)",
    )


def _export_tflite(args: argparse.Namespace) -> int:
    if args.test_examples < 0:
        raise ValueError(
            f"Expected --test-examples >= 0. Received: --test-examples {args.test_examples}"
        )
    import numpy as np

    from tfaux import deploy

    export = deploy.load(args.savedmodel)
    dataset = args.dataset or export.metadata.get("dataset")
    # The test images first: missing data fails before a minute of conversion, not after.
    if args.test_examples and dataset:
        images, labels = deploy.dataset_images(export, dataset, args.test_examples)
        measured_on = f"the first {len(images)} {dataset} test images"
    else:
        images = np.random.default_rng(0).random((64, *export.input_shape), dtype=np.float32)
        labels, measured_on = None, "64 random images (no dataset: no accuracy)"
    paths = deploy.tflite(export, args.out or export.directory / "tflite")
    print(f"wrote {', '.join(str(p) for p in paths.values())}; measured on {measured_on}:")
    print("| model | size | ms/image | max logit diff vs SavedModel | test accuracy |")
    print("|---|---|---|---|---|")
    for row in deploy.measure(export, paths, images, labels):
        model = "SavedModel" if row.model == "SavedModel" else f"TFLite {row.model}"
        accuracy = "-" if row.accuracy is None else f"{100 * row.accuracy:.2f}"
        print(
            f"| {model} | {_size(row.size_bytes)} | {row.latency_ms:.3f} | "
            f"{row.max_logit_diff:.2g} | {accuracy} |"
        )
    print("ms/image: median of single-image calls; TFLite on 1 thread, the SavedModel on all cores")
    return 0


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:.2f} MiB" if num_bytes >= 2**20 else f"{num_bytes / 2**10:.1f} KiB"


# === Evaluate an export: AutoAttack on any SavedModel ===
def _add_evaluate(commands) -> None:
    parser = _add_command(
        commands,
        "evaluate",
        help="robust accuracy of an exported classifier under AutoAttack (and PGD-20)",
        description="Robust accuracy of an exported classifier under AutoAttack (and PGD-20), "
        "through its serving signature, on the first test images of a dataset. The same command "
        "continues an interrupted evaluation.",
        epilog="examples:\n"
        "  python recipes/run.py evaluate savedmodels/<run> --eps 0.1 --examples 500\n"
        "  python recipes/run.py evaluate savedmodels/<run> --attacks apgd-ce,square --json\n",
    )
    parser.add_argument("savedmodel", help="an export written by a run (savedmodels/<run>)")
    parser.add_argument("--dataset", help="whose test images (default: the export's dataset)")
    parser.add_argument("--eps", type=float, required=True, help="budget, pixels in [0, 1]")
    parser.add_argument("--norm", default="linf", choices=("linf", "l2"))
    parser.add_argument("--examples", type=int, default=500, help="first N test images")
    parser.add_argument(
        "--attacks",
        default="autoattack",
        help="comma-separated: autoattack, pgd, apgd-ce, apgd-dlr, fab, apgd-t, fab-t, square",
    )
    parser.add_argument("--version", default="standard", help="AutoAttack: standard|plus|rand")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(
        execute=_evaluate, interrupted="run the same command again to continue the evaluation"
    )


def _evaluate(args: argparse.Namespace) -> int:
    if args.eps < 0:
        raise ValueError(f"Expected --eps >= 0. Received: --eps {args.eps}")
    from tfaux.benchmark import benchmark, parse_attacks

    attacks = parse_attacks(args.attacks)
    # One state file per evaluation; the file itself also checks model, images and settings.
    name = "-".join(
        [args.dataset or "own", args.norm, f"{args.eps:g}", str(args.examples), args.version]
        + [",".join(attacks), f"seed{args.seed}"]
    )
    state = Path(args.savedmodel) / f"autoattack-{name}.npz"
    report = benchmark(
        args.savedmodel,
        dataset=args.dataset,
        eps=args.eps,
        norm=args.norm,
        examples=args.examples,
        attacks=attacks,
        version=args.version,
        seed=args.seed,
        state_path=state if os.access(args.savedmodel, os.W_OK) else None,
        progress=not args.no_progress,
    )
    n = report["examples"]
    rows = [("clean", report["clean"])]
    rows += [(k, v) for k, v in report.items() if k not in _NOT_ATTACKS]
    rows.append(("robust (worst case)", report["robust"]))
    print(f"| {report['dataset']}, {args.norm} ε={args.eps:g}, {n} images | accuracy % |")
    print("|---|---|")
    for label, accuracy in rows:
        print(f"| {label} | {accuracy:.2f} |")
    for check in report["checks"]:
        if check["passed"] is False:
            print(f"warning: robustness claim not trustworthy: {check['name']}: {check['detail']}")
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "checks"}))
    return 0


_NOT_ATTACKS = {"clean", "robust", "examples", "eps", "norm", "dataset", "checks", "trustworthy"}
