"""Model versions, aliases, integrity checks on fetch, lineage and model references."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.errors import IntegrityError, RegistryError
from loopml.core.records import ModelVersion
from loopml.registry import Catalog, parse_model_ref
from loopml.registry._files import sha256


def test_register_copies_folder_and_counts_versions(
    catalog: Catalog, register, model_folder: Path
) -> None:
    """Each registration copies the folder to models/<name>/<version>/ as version 1, 2, 3."""
    first, second = register(score=0.8), register(score=0.85)
    other = register("weather")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert isinstance(first, ModelVersion) and first.ref == "flights@1"
    assert (first.task, first.metric, first.score) == ("classification", "roc_auc", 0.8)
    assert first.metrics == {"roc_auc": 0.8, "f1": 0.5} and first.aliases == ()
    folder = Path(second.artifact_uri)
    assert folder == catalog.artifacts_dir / "models" / "flights" / "2"
    assert (folder / "extra" / "notes.txt").read_text() == "trained on flights"
    (model_folder / "model.joblib").write_bytes(b"retrained")  # the source may change later
    assert catalog.fetch("flights", 2) == folder
    assert catalog.models() == ["flights", "weather"]
    assert [v.version for v in catalog.model_versions("flights")] == [1, 2]
    assert [v.ref for v in catalog.model_versions()] == ["flights@1", "flights@2", "weather@1"]
    assert not list((catalog.artifacts_dir / "models" / "flights").glob(".incoming-*"))


def test_register_rejects_bad_input(catalog: Catalog, register, tmp_path: Path) -> None:
    """A bad name, a non-finite score, an empty or missing folder or an unknown run fail."""
    with pytest.raises(RegistryError, match="not allowed"):
        register("../escape")
    with pytest.raises(RegistryError, match="finite"):
        register(score=float("nan"))
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(RegistryError):
            catalog.register_model(
                "m", folder, run_id=None, task="regression", metric="rmse", score=1.0, metrics={}
            )
    with pytest.raises(RegistryError, match="Unknown run"):
        register(run_id="f" * 32)
    assert catalog.models() == []


def test_alias_moves_and_is_logged(catalog: Catalog, register) -> None:
    """Setting an alias again moves it; model_version follows it and events record each move."""
    register(), register()
    catalog.set_alias("flights", "champion", 1)
    assert catalog.model_version("flights").version == 1
    catalog.set_alias("flights", "champion", 2)
    catalog.set_alias("flights", "challenger", 1)
    assert catalog.model_version("flights", "champion").version == 2
    assert catalog.model_version("flights", "challenger").aliases == ("challenger",)
    assert [v.aliases for v in catalog.model_versions("flights")] == [
        ("challenger",),
        ("champion",),
    ]
    moves = catalog.events(subject="flights", kind="alias_set")
    assert [e["payload"] for e in moves][::-1] == [
        {"alias": "champion", "version": 1, "previous": None},
        {"alias": "champion", "version": 2, "previous": 1},
        {"alias": "challenger", "version": 1, "previous": None},
    ]
    assert len(catalog.events(kind="model_registered")) == 2

    catalog.delete_alias("flights", "challenger")
    assert catalog.model_version("flights", 1).aliases == ()
    assert catalog.events(limit=1)[0]["kind"] == "alias_deleted"


def test_version_refs_number_text_and_latest(catalog: Catalog, register) -> None:
    """A ref may be a number, digits as text, or 'latest' (the newest, never settable)."""
    register(), register()
    assert catalog.model_version("flights", 1).version == 1
    assert catalog.model_version("flights", "2").version == 2
    assert catalog.model_version("flights", "latest").version == 2
    with pytest.raises(RegistryError, match="cannot be set"):
        catalog.set_alias("flights", "latest", 1)


def test_unknown_model_version_and_alias_name_close_matches(catalog: Catalog, register) -> None:
    """Unknown names raise RegistryError with the valid choices, the closest one and a hint."""
    with pytest.raises(RegistryError, match="no models yet"):
        catalog.model_version("flights")
    register(), register("weather")
    with pytest.raises(RegistryError) as model:
        catalog.model_version("flihgts", 1)
    assert "Did you mean 'flights'" in model.value.message and model.value.hint
    assert "'weather'" in model.value.message
    with pytest.raises(RegistryError) as version:
        catalog.fetch("flights", 7)
    assert "version of model 'flights'" in version.value.message
    assert "1 to 1" in version.value.hint
    with pytest.raises(RegistryError, match="no aliases yet") as alias:
        catalog.model_version("flights")
    assert "set_alias" in alias.value.hint
    catalog.set_alias("flights", "champion", 1)
    with pytest.raises(RegistryError, match="Did you mean 'champion'"):
        catalog.model_version("flights", "champoin")
    with pytest.raises(RegistryError):
        catalog.set_alias("flights", "champion", 5)
    with pytest.raises(RegistryError):
        catalog.delete_alias("flights", "challenger")
    with pytest.raises(RegistryError):
        catalog.model_versions("nope")


def test_fetch_detects_a_changed_file(catalog: Catalog, register) -> None:
    """Changing one byte of a stored file makes fetch raise IntegrityError naming it."""
    version = register()
    target = Path(version.artifact_uri) / "model.joblib"
    expected = sha256(target)
    data = bytearray(target.read_bytes())
    data[10] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as err:
        catalog.fetch("flights", 1)
    assert (err.value.file, err.value.expected, err.value.found) == (
        "model.joblib",
        expected,
        sha256(target),
    )
    assert "model.joblib" in err.value.message and expected in err.value.message
    assert isinstance(err.value, RegistryError) and err.value.hint


def test_fetch_detects_missing_and_added_files(catalog: Catalog, register) -> None:
    """A deleted file, an added file or a removed folder each fail the check."""
    folder = Path(register().artifact_uri)
    (folder / "extra" / "notes.txt").unlink()
    with pytest.raises(IntegrityError) as missing:
        catalog.fetch("flights", 1)
    assert missing.value.file == "extra/notes.txt" and missing.value.found is None

    folder = Path(register().artifact_uri)
    (folder / "payload.py").write_text("import os")
    with pytest.raises(IntegrityError) as added:
        catalog.fetch("flights", 2)
    assert added.value.file == "payload.py" and added.value.expected is None

    folder = Path(register().artifact_uri)
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()
    with pytest.raises(IntegrityError, match="missing"):
        catalog.fetch("flights", 3)


def test_lineage_links_model_run_and_ingests(
    catalog: Catalog, register, finish, make_ingest, tmp_path: Path
) -> None:
    """lineage() walks model version -> run (data, contract, code) -> that run's ingests."""
    run_id = catalog.start_run(project="flights", params={"budget": 60})
    catalog.record_ingest(make_ingest(), run_id=run_id)
    catalog.record_ingest(make_ingest("other"))  # another run's ingest stays out
    (tmp_path / "card.md").write_text("# model card")
    catalog.log_artifact(run_id, tmp_path / "card.md", name="card.md", kind="card")
    finish(run_id)
    register(run_id=run_id)
    catalog.set_alias("flights", "champion", 1)

    found = catalog.lineage("flights", "champion")
    assert found["model"]["version"] == 1 and found["model"]["aliases"] == ("champion",)
    assert {f["path"] for f in found["model"]["files"]} == {
        "model.joblib",
        "bundle.json",
        "extra/notes.txt",
    }
    run = found["run"]
    assert run["id"] == run_id and run["params"] == {"budget": 60}
    assert run["lake_versions"] == {"clean/flights": 3} and run["git_commit"] == "abc1234"
    assert run["contract_fingerprint"] == "c0ffee" and run["code_version"] == "0.1.0"
    assert [i["ingest_id"] for i in found["ingests"]] == ["ing-1"]
    assert [a["name"] for a in found["artifacts"]] == ["card.md"]

    register()
    assert catalog.lineage("flights", 2)["run"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flights@champion", ("flights", "champion")),
        ("flights@3", ("flights", 3)),
        ("flights", ("flights", "champion")),
        (" flights@latest ", ("flights", "latest")),
    ],
)
def test_parse_model_ref(text: str, expected: tuple[str, int | str]) -> None:
    """Refs split into a name and a version number or alias; a bare name means champion."""
    assert parse_model_ref(text) == expected


@pytest.mark.parametrize("text", ["", "@champion", "flights@", "flights@two words", "9lives"])
def test_parse_model_ref_rejects_malformed(text: str) -> None:
    """Malformed refs raise RegistryError with an example in the hint."""
    with pytest.raises(RegistryError) as err:
        parse_model_ref(text)
    assert err.value.hint


def test_a_bundle_installs_in_another_catalog_once(catalog: Catalog, register,
                                                   model_folder: Path, tmp_path: Path) -> None:
    """export_model writes a version's files with their sha256; install_model registers them in
    another catalog with the same record, points the alias at them, and finds that version
    when the same bundle is installed again; a newer bundle becomes the next version."""
    register(score=0.8)
    (model_folder / "model.joblib").write_bytes(b"retrained")
    register(score=0.9)
    catalog.set_alias("flights", "champion", 2)
    exported = catalog.export_model("flights", "champion", tmp_path / "out")
    assert exported.version == 2
    with Catalog(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other") as other:
        installed = other.install_model(tmp_path / "out", alias="champion")
        assert (installed.version, installed.aliases) == (1, ("champion",))
        assert (installed.score, installed.metrics) == (0.9, {"roc_auc": 0.9, "f1": 0.5})
        assert other.files_of("flights", 1) == catalog.files_of("flights", 2)
        assert other.install_model(tmp_path / "out", alias="champion").version == 1
        assert [v.version for v in other.model_versions("flights")] == [1]
        catalog.export_model("flights", 1, tmp_path / "out")  # replaces the bundle
        assert other.install_model(tmp_path / "out").version == 2
        assert other.model_version("flights", "champion").version == 1


def test_a_changed_bundle_is_refused(catalog: Catalog, register, tmp_path: Path) -> None:
    """A bundle file whose bytes changed, or a folder that is no bundle, is a clear error and
    registers nothing."""
    register()
    catalog.export_model("flights", 1, tmp_path / "out")
    notes = tmp_path / "out" / "files" / "extra" / "notes.txt"
    notes.write_text("trained on something else")
    with Catalog(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other") as other:
        with pytest.raises(IntegrityError, match="notes.txt"):
            other.install_model(tmp_path / "out", alias="champion")
        with pytest.raises(RegistryError, match="model.json"):
            other.install_model(tmp_path / "out" / "files")
        assert other.models() == []
