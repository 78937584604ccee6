import inspect

import streamvae


def test_every_name_in_dunder_all_exists():
    missing = [name for name in streamvae.__all__ if not hasattr(streamvae, name)]
    assert missing == []


def test_dunder_all_is_sorted_and_has_no_duplicates():
    names = [n for n in streamvae.__all__ if n != "__version__"]
    assert names == sorted(names)
    assert len(set(streamvae.__all__)) == len(streamvae.__all__)


def test_every_public_class_has_a_docstring_with_an_example():
    lacking = [
        name
        for name in streamvae.__all__
        if inspect.isclass(obj := getattr(streamvae, name))
        and not issubclass(obj, Exception)
        and "Example" not in (obj.__doc__ or "")
    ]
    assert lacking == []


def test_the_core_never_imports_kafka():
    import pathlib

    root = pathlib.Path(streamvae.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if any(
            line.strip().startswith(
                ("import kafka", "from kafka", "import consumers", "from consumers")
            )
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []
