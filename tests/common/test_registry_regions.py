"""The registry refuses region codes the Kemendagri gazetteer does not know, or that
contradict the place the agency's name states (issue 15: the demo's Kecamatan Rungkut had
the code of Kecamatan Gubeng and nothing noticed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from common.registry import RegistryError, load_registry

ROOT = Path(__file__).resolve().parents[2]


def _registry(tmp_path: Path, name: str, code: str, account_code: str | None = None) -> Path:
    account = {
        "platform": "facebook",
        "platform_id": "1",
        "agency_id": "a",
        "app_secret_env": "META_APP_SECRET",
    }
    if account_code:
        account["region_code"] = account_code
    data = {
        "agencies": [{"id": "a", "name": name, "kind": "subdistrict", "region_code": code}],
        "accounts": [account],
    }
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_shipped_demo_registry_is_consistent() -> None:
    registry = load_registry(ROOT / "deploy/config/registry.yaml")
    rungkut = registry.agency("sby-kec-rungkut")
    assert rungkut is not None and rungkut.region_code == "35.78.03"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Kecamatan Rungkut", "35.78.03"),
        ("Kecamatan Rungkut Kota Surabaya", "35.78.03"),
        ("Dinas Pekerjaan Umum Kota Makassar", "73.71"),
        ("Kelurahan Darmo", "35.78.04.1005"),
        ("Kab. Sidoarjo, Dinas Perhubungan", "35.15"),
        ("Dinas Pemberdayaan Masyarakat dan Desa", "35.78"),  # "Desa" names no place
        ("Dinas Sosial", "35"),
    ],
)
def test_consistent_codes_load(tmp_path: Path, name: str, code: str) -> None:
    assert load_registry(_registry(tmp_path, name, code)).agencies[0].region_code == code


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("Kecamatan Rungkut", "35.78.08", "'35.78.08' is Kecamatan Gubeng, but the name says"),
        ("Kecamatan Rungkut", "35.78", "is a regency/city code"),
        ("Dinas PU Kota Makassar", "35.78", "'35.78' is Kota Surabaya"),
        ("Kelurahan Darmo", "35.78.04.1002", "Kelurahan Jagir"),
        ("Dinas Sosial", "35.99", "unknown region code '35.99'"),
        ("Dinas Sosial", "35.78.99", "unknown region code"),
    ],
)
def test_unknown_or_contradicting_codes_are_refused(
    tmp_path: Path, name: str, code: str, expected: str
) -> None:
    path = _registry(tmp_path, name, code)
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    assert str(path) in str(err.value) and "agencies.0" in str(err.value)
    assert expected in str(err.value)


def test_an_accounts_own_region_code_is_checked_too(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"accounts\.0\.region_code.*unknown region code"):
        load_registry(_registry(tmp_path, "Dinas Sosial", "35.78", account_code="35.78.77"))
    ok = load_registry(_registry(tmp_path, "Dinas Sosial", "35.78", account_code="35.78.03"))
    assert ok.account_region(ok.accounts[0]) == "35.78.03"
