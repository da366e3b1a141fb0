"""The pieces of a run, one job each; `tfaux.runner.run` puts them together.

- `directory`: where a run lives, which run of a config finished, reading one back.
- `training`: training one variant (resumable).
- `evaluation`: evaluating one trained variant, the -C benchmark and its CE reference.
- `export`: exporting the best variant as a SavedModel.
- `sweep`: one run per seed, per backbone, or per backbone and seed.
"""
