"""Device profiles: every shipped profile loads, and each kind of bad profile is rejected with a useful message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgekit.errors import ProfileError
from edgekit.profiles import load_profile, load_profile_file, parse_profile, profile_names, shipped_profiles

pytestmark = pytest.mark.unit

REQUIRED = {"raspberry-pi-4", "raspberry-pi-5", "jetson-nano", "jetson-orin-nano", "intel-nuc",
            "generic-x86_64", "generic-arm64", "iphone", "android"}

GOOD = """
name = "test-board"
description = "a test board"
os = "linux"
arch = "arm64"
cpu = "Cortex-A72"
cores = 4
ram_mb = 2048
isa = ["neon"]
targets = ["onnx-int8-arm64", "onnx-fp32"]
qemu_cpu = "cortex-a72"
[runtime]
name = "onnxruntime"
threads = 4
[memory]
cap_mb = 512
[power]
source = "estimated"
idle_watts = 2.0
max_watts = 6.0
"""


def test_every_required_profile_ships_and_validates() -> None:
    profiles = shipped_profiles()
    assert REQUIRED <= set(profiles)
    for name, profile in profiles.items():
        assert profile.name == name
        assert profile.targets, name


def test_facts_match_the_reference() -> None:
    pi4, pi5, orin = load_profile("raspberry-pi-4"), load_profile("raspberry-pi-5"), load_profile("jetson-orin-nano")
    assert "dotprod" not in pi4.isa and pi4.qemu_cpu == "cortex-a72"
    assert "dotprod" in pi5.isa and pi5.qemu_cpu == "cortex-a76"
    assert orin.qemu_cpu == "neoverse-n1" and orin.flash and orin.flash.l4t.startswith("R36")
    assert load_profile("jetson-nano").flash.l4t == "R32.7"
    assert load_profile("intel-nuc").runtime.name == "openvino"
    assert pi4.power.source == "estimated" and orin.power.source == "ina3221"
    assert load_profile("iphone").targets[0].startswith("coreml-")


def test_good_profile_parses() -> None:
    p = parse_profile(GOOD, "test-board.toml")
    assert p.runtime.max_batch == 8 and p.memory.soft_limit_pct == 90


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda t: 'colour = "red"\n' + t, r"key 'colour': unknown key; allowed here: .*accelerators"),
        (lambda t: t.replace("threads = 4", "threads = 4\nthread = 2"), r"key 'runtime.thread': unknown key.*threads"),
        (lambda t: t.replace("cores = 4", 'cores = "four"'), r"key 'cores': expected an integer, got str 'four'"),
        (lambda t: t.replace('"onnx-fp32"]', '"onnx-fp23"]'), r"key 'targets\[1\]': unknown target 'onnx-fp23' "
                                                               r"\(did you mean 'onnx-fp32'\?\)"),
        (lambda t: t.replace('"onnx-fp32"]', '"coreml-fp16"]'), r"'coreml-fp16' cannot run on os='linux'"),
        (lambda t: t.replace('"onnx-int8-arm64", ', '"onnx-int8-x86", '), r"cannot run on os='linux' arch='arm64'"),
        (lambda t: t.replace('isa = ["neon"]', 'isa = ["avx2"]'), r"key 'isa': \['avx2'\] are not arm64 features"),
        (lambda t: t.replace('isa = ["neon"]', 'isa = ["sse9"]'), r"key 'isa\[0\]': 'sse9' is not allowed"),
        (lambda t: t.replace("cap_mb = 512", "cap_mb = 4096"), r"4096 MB is more than the board's 2048 MB"),
        (lambda t: t.replace("max_watts = 6.0", "max_watts = 1.0"), r"need 0 < idle_watts < max_watts"),
        (lambda t: t.replace('qemu_cpu = "cortex-a72"\n', ""), r"key 'qemu_cpu'"),
        (lambda t: t.replace('name = "onnxruntime"', 'name = "openvino"'), r"key 'runtime.name': 'openvino' "
                                                                          r"executes none of the targets"),
        (lambda t: t.replace("[memory]\ncap_mb = 512\n", ""), r"key 'memory': required key is missing"),
        (lambda t: t.replace('os = "linux"', 'os = "linux"\nos = "ios"'), r"not valid TOML"),
    ],
)
def test_bad_profiles_are_rejected_with_file_key_and_allowed(change, pattern: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(change(GOOD), "device_profiles/test-board.toml")
    message = str(info.value)
    assert message.startswith("device_profiles/test-board.toml: "), message
    assert re.search(pattern, message), message


def test_flash_only_on_linux_and_l4t_needs_its_facts() -> None:
    bad = GOOD + '[flash]\nmethod = "l4t-flash"\nimage_family = "l4t"\nboot_partition = "APP"\n'
    with pytest.raises(ProfileError, match="L4T flashing needs jetpack, l4t and board_config"):
        parse_profile(bad, "x.toml")


def test_profile_file_name_must_match(tmp_path: Path) -> None:
    path = tmp_path / "other-name.toml"
    path.write_text(GOOD)
    with pytest.raises(ProfileError, match="must match the file name 'other-name'"):
        load_profile_file(path)
    good = tmp_path / "test-board.toml"
    good.write_text(GOOD)
    assert load_profile(str(good)).name == "test-board"


def test_unknown_profile_suggests_closest() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'rasberry-pi-5' \(did you mean 'raspberry-pi-5'\?\)"):
        load_profile("rasberry-pi-5")
    assert "raspberry-pi-5" in profile_names()
