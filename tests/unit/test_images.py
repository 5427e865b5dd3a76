import pytest

from sandbox.errors import UsageError
from sandbox.images import IMAGES, newest, resolve


@pytest.mark.parametrize(
    ("name", "framework", "version"),
    [
        ("tf2-cpu.2-18", "tf", "2.18"),
        ("us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-14:latest", "tf", "2.14"),
        ("gcr.io/aiml/prediction/containers/pytorch-cpu.2-4:latest", "torch", "2.4"),
    ],
)
def test_resolve_accepts_short_names_and_full_uris(name: str, framework: str, version: str) -> None:
    image = resolve(name)
    assert (image.framework, image.version) == (framework, version)


def test_unknown_image_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as excinfo:
        resolve("tf2-cpu.2-99")
    assert "tf2-cpu.2-18" in excinfo.value.hint
    assert excinfo.value.code == "image.unknown"


def test_newest_is_the_highest_cpu_non_deprecated_version() -> None:
    assert newest("tf").name == "tf2-cpu.2-18"
    assert newest("torch").name == "pytorch-cpu.2-4"


def test_deprecated_and_gpu_images_warn() -> None:
    assert any("deprecated" in w for w in IMAGES["pytorch-cpu.2-1"].warnings())
    assert any("GPU" in w for w in IMAGES["tf2-gpu.2-18"].warnings())
    assert IMAGES["tf2-cpu.2-18"].warnings() == []
    assert IMAGES["tf2-cpu.2-6"].native is False
