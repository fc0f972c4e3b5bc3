"""Errors raised inside a model say which submodule failed."""

import pytest

import ember
import ember.nn as nn


def test_shape_errors_name_the_failing_submodule():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(
                [nn.Sequential(nn.Linear(3, 4), nn.ReLU()), nn.Sequential(nn.Linear(5, 2))]
            )

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    with pytest.raises(RuntimeError) as info:
        Net()(ember.ones(2, 3))
    msg = str(info.value)
    assert "2x4 and 5x2" in msg  # the op and both shapes
    assert msg.endswith("(in Linear 'blocks.1.0')")  # the qualified name in the model
