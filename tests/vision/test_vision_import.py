import importlib.metadata

import ember_vision


def test_version_matches_distribution():
    assert ember_vision.__version__ == "0.1.0"
    assert importlib.metadata.version("ember-vision") == ember_vision.__version__


def test_ember_core_is_importable_alongside():
    import ember

    assert ember.__name__ == "ember"
    assert importlib.metadata.version("ember") == "0.1.0"
