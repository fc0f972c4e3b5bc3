import importlib.metadata

import ember_text


def test_version_matches_distribution():
    assert ember_text.__version__ == "0.1.0"
    assert importlib.metadata.version("ember-text") == ember_text.__version__


def test_ember_core_is_importable_alongside():
    import ember

    assert ember.__name__ == "ember"
    assert importlib.metadata.version("ember") == "0.1.0"
