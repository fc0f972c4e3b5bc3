"""``ember.utils``: ``ember.utils.data`` is ``ember.data``, so code written against
``torch.utils.data`` runs unchanged after ``import ember as torch``."""

import sys

from .. import data

sys.modules[__name__ + ".data"] = data
