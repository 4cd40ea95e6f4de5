"""docs/configuration.md is the schema as it is now: regenerated in memory, it must not differ."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from houseprice.config import PipelineConfig
from houseprice.training_config import TrainerConfig
from scripts import config_reference
from scripts.config_reference import PAGE, field_comments, main, render, type_name


def test_committed_page_is_current():
    assert PAGE.read_text() == render(), "docs/configuration.md is stale: run `make docs`"


def test_every_field_of_every_section_is_listed():
    page = render()
    for name, field in PipelineConfig.model_fields.items():
        section = field.annotation
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            assert f"| `{name}` |" in page
            continue
        for key in section.model_fields:
            assert f"| `{name}.{key}` |" in page, f"{name}.{key}"
    for key in TrainerConfig.model_fields:
        assert f"| `training.<trainer>.{key}` |" in page, key


def test_a_fields_reason_comes_from_the_comment_above_it():
    class Example(BaseModel):
        plain: int = Field(1, description="No comment above.")
        # Why this one: a reason
        # over two lines.
        reasoned: float = Field(0.5, ge=0, lt=1, description="Has one.")

    assert field_comments(Example) == {"reasoned": "Why this one: a reason over two lines."}
    row = next(line for line in render().splitlines() if line.startswith("| `drift.max_psi`"))
    assert "*Why:* Population stability index: < 0.1 stable" in row
    assert "float, > 0" in row and "`0.25`" in row


def test_types_read_as_a_yaml_writer_sees_them():
    assert type_name(int | None) == "int or null"
    assert type_name(list[str]) == "list of str"
    assert type_name(Literal["cg", "adam"]) == 'one of `"cg"`, `"adam"`'


def test_check_fails_on_a_stale_page_and_write_fixes_it(tmp_path, monkeypatch, capsys):
    page = tmp_path / "configuration.md"
    page.write_text(render().replace("Fewest rows a run accepts.", "Old words."))
    assert main(["--check", "--page", str(page)]) == 1
    assert "stale: run `make docs`" in capsys.readouterr().err
    assert main(["--page", str(page)]) == 0
    assert main(["--check", "--page", str(page)]) == 0
    # A description changed in the code makes the committed page stale too.
    field = PipelineConfig.model_fields["lock_timeout_s"]
    monkeypatch.setattr(field, "description", "Changed.")
    assert "| Changed. |" in config_reference.render()
    assert main(["--check", "--page", str(page)]) == 1
