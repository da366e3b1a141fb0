"""Backbone families, one file each; importing this package registers every file's backbones."""

from tfaux.plugins import import_submodules

import_submodules(__name__)
