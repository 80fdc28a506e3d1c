"""Compiled report templates are kept between runs (Jinja's bytecode cache): a second render
compiles nothing, a changed template or header is recompiled, and a cache that cannot be used
only costs the compile."""

import os

import jinja2
import pytest

from ansible_collections.envparity.audit.plugins.plugin_utils import report_writer
from ansible_collections.envparity.audit.plugins.plugin_utils.report_writer import TemplateCache, render_markdown

VIEW = {"items": ["a", "b"]}


@pytest.fixture
def compiles(monkeypatch):
    """How many times Jinja compiles a template to Python."""
    calls = []
    original = jinja2.Environment.compile

    def counting(self, source, *args, **kwargs):
        calls.append(1)
        return original(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return calls


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def cache_in(path):
    path.mkdir(mode=0o700)
    return TemplateCache(str(path))


def test_a_second_render_uses_the_compiled_template(tmp_path, compiles):
    cache = cache_in(tmp_path / "cache")
    template = write(tmp_path / "t.j2", "{% for item in view['items'] %}- {{ item }}\n{% endfor %}")
    first = render_markdown(template, VIEW, cache)
    second = render_markdown(template, VIEW, cache)
    assert first == second == "- a\n- b\n"
    assert len(compiles) == 1
    assert len(os.listdir(tmp_path / "cache")) == 1


def test_a_changed_template_or_header_is_compiled_again(tmp_path, compiles):
    cache = cache_in(tmp_path / "cache")
    body = "{% for item in view['items'] %}\n- {{ item }}\n{% endfor %}\n"
    template = write(tmp_path / "t.j2", body)
    plain = render_markdown(template, VIEW, cache)
    write(tmp_path / "t.j2", "#jinja2: trim_blocks: True\n" + body)
    trimmed = render_markdown(template, VIEW, cache)
    assert plain == "\n- a\n\n- b\n\n"
    assert trimmed == "- a\n- b\n"
    write(tmp_path / "t.j2", "#jinja2: trim_blocks: False\n" + body)
    assert render_markdown(template, VIEW, cache) == plain
    write(tmp_path / "t.j2", "{{ view['items'] | length }}")
    assert render_markdown(template, VIEW, cache) == "2"
    assert len(compiles) == 4


def test_an_unusable_cache_only_costs_the_compile(tmp_path, compiles):
    directory = tmp_path / "cache"
    cache = cache_in(directory)
    template = write(tmp_path / "t.j2", "{{ view['items'][0] }}")
    directory.chmod(0o500)  # cannot be written
    try:
        assert render_markdown(template, VIEW, cache) == "a"
        assert render_markdown(template, VIEW, cache) == "a"
    finally:
        directory.chmod(0o700)
    (directory / "garbage").write_bytes(b"not bytecode")
    for name in os.listdir(directory):
        (directory / name).write_bytes(b"j2 not bytecode")
    assert render_markdown(template, VIEW, cache) == "a"


def test_without_a_safe_cache_directory_the_render_compiles(tmp_path, monkeypatch, compiles):
    def unsafe(*args, **kwargs):
        raise RuntimeError("The cache directory is not owned by the user")

    monkeypatch.setattr(jinja2.FileSystemBytecodeCache, "__init__", unsafe)
    assert report_writer.template_cache() is None
    template = write(tmp_path / "t.j2", "{{ view['items'][1] }}")
    assert render_markdown(template, VIEW) == "b"
    assert len(compiles) == 1
