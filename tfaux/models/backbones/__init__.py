"""Backbone families, one file each: `tfaux.models.registry.BACKBONES` imports them all on its
first lookup, so a new family is one new file."""
