import pytest

from robustviz.registry import Registry, RegistryError


def make_registry():
    registry = Registry(("perturbation", "method"))

    @registry.register("perturbation", "gaussian_noise", family="noise")
    class GaussianNoise:
        def __init__(self, scale: float = 1.0):
            self.scale = scale

    return registry, GaussianNoise


def test_register_create_and_list():
    registry, cls = make_registry()
    made = registry.create("perturbation", "gaussian_noise", scale=2.0)
    assert isinstance(made, cls) and made.scale == 2.0
    assert registry.list("perturbation") == ["gaussian_noise"]
    assert registry.entry("perturbation", "gaussian_noise").metadata == {"family": "noise"}
    assert ("perturbation", "gaussian_noise") in registry


def test_unknown_name_suggests_close_matches():
    registry, _ = make_registry()
    with pytest.raises(RegistryError) as info:
        registry.create("perturbation", "gausian_noise")
    message = str(info.value)
    assert "unknown perturbation 'gausian_noise'" in message and "Did you mean 'gaussian_noise'" in message


def test_unknown_kind_suggests():
    registry, _ = make_registry()
    with pytest.raises(RegistryError, match="Did you mean 'method'"):
        registry.list("methods")


def test_duplicate_registration_is_an_error_unless_replace():
    registry, _ = make_registry()
    with pytest.raises(ValueError, match="already registered"):
        registry.register("perturbation", "gaussian_noise")(lambda: None)
    registry.register("perturbation", "gaussian_noise", replace=True)(lambda: "new")
    assert registry.create("perturbation", "gaussian_noise") == "new"


def test_bad_parameters_name_the_component():
    registry, _ = make_registry()
    with pytest.raises(TypeError, match="unknown parameter 'sigma' for perturbation 'gaussian_noise'"):
        registry.create("perturbation", "gaussian_noise", sigma=3)


def test_entry_point_plugins_are_loaded(monkeypatch):
    import robustviz.registry as module

    class FakePoint:
        name = "plugin_noise"
        value = "somepkg:PluginNoise"

        def load(self):
            return lambda: "plugin!"

    def fake_entry_points(group):
        return [FakePoint()] if group == "robustviz.perturbation" else []

    monkeypatch.setattr(module, "entry_points", fake_entry_points)
    registry = Registry(("perturbation",))
    assert registry.create("perturbation", "plugin_noise") == "plugin!"
    assert registry.entry("perturbation", "plugin_noise").metadata["plugin"] == "somepkg:PluginNoise"


def test_global_registry_has_builtins():
    import robustviz

    for kind in ("model", "dataset", "perturbation", "method", "metric"):
        assert robustviz.list_names(kind), f"no built-in {kind}s registered"
    assert "shapes" in robustviz.list_names("dataset")


def test_prefix_families_resolve_names():
    registry = Registry(("model",))
    registry.register("model", "hub:")(lambda name, pretrained=True: (name, pretrained))
    assert registry.create("model", "hub:resnet50", pretrained=False) == ("resnet50", False)
    with pytest.raises(RegistryError, match="unknown model 'other:resnet50'"):
        registry.create("model", "other:resnet50")
