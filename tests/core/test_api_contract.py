"""Every ember-core name that ../shared/API.md promises exists, and each callable one carries
a docstring. The lists are API.md's, section by section; a name dropped or renamed in the
code fails here before a user's script does."""

from __future__ import annotations

import importlib
import inspect

import pytest

import ember

CONTRACT = {
    "ember": """tensor from_numpy as_tensor zeros ones full empty arange linspace eye zeros_like
        ones_like full_like empty_like rand randn randint randperm rand_like randn_like
        manual_seed float16 bfloat16 float32 float64 int8 int16 int32 int64 uint8 bool
        get_default_dtype set_default_dtype device cat stack matmul bmm einsum where outer
        tensordot tril triu diag allclose isclose isnan isinf isfinite no_grad enable_grad
        set_grad_enabled inference_mode save load from_dlpack channels_last autocast
        set_float32_matmul_precision Tensor""",
    "ember.Tensor": """size dim numel item tolist numpy to cpu cuda float double half long int
        bool type_as clone detach detach_ contiguous requires_grad_ backward retain_grad
        register_hook view reshape flatten unflatten squeeze unsqueeze permute transpose
        expand expand_as repeat tile chunk split narrow flip roll sum mean var std prod max min
        amax amin argmax argmin logsumexp norm all any cumsum cumprod abs neg exp log log1p
        expm1 sqrt rsqrt sin cos tanh sigmoid relu pow clamp clip sign floor ceil round where
        masked_fill maximum minimum gather scatter scatter_add index_select masked_select
        take_along_dim topk sort argsort unique nonzero __dlpack__ __array__ add_ sub_ mul_
        div_ zero_ fill_ clamp_ relu_ exp_ abs_ neg_ sqrt_ masked_fill_ copy_""",
    "ember.autograd": "Function grad gradcheck detect_anomaly Variable",
    "ember.nn": """Module Parameter Sequential ModuleList ModuleDict ParameterList Identity
        Linear Bilinear Conv1d Conv2d ConvTranspose2d MaxPool2d AvgPool2d AdaptiveAvgPool2d
        BatchNorm1d BatchNorm2d LayerNorm GroupNorm RMSNorm Dropout Embedding Flatten Unflatten
        ReLU LeakyReLU GELU SiLU Tanh Sigmoid Softmax LogSoftmax ELU Softplus Mish Hardtanh
        MultiheadAttention TransformerEncoderLayer TransformerEncoder TransformerDecoderLayer
        TransformerDecoder LSTM GRU MSELoss L1Loss SmoothL1Loss HuberLoss CrossEntropyLoss
        NLLLoss BCELoss BCEWithLogitsLoss KLDivLoss""",
    "ember.nn.Module": """forward __call__ parameters named_parameters buffers named_buffers
        children named_children modules named_modules state_dict load_state_dict train eval
        requires_grad_ zero_grad to cpu cuda float double half apply register_buffer
        register_parameter register_forward_hook register_forward_pre_hook add_module
        get_submodule extra_repr""",
    "ember.nn.functional": """linear conv1d conv2d max_pool2d avg_pool2d adaptive_avg_pool2d
        batch_norm layer_norm group_norm dropout embedding relu gelu silu softmax log_softmax
        cross_entropy nll_loss mse_loss binary_cross_entropy_with_logits one_hot pad
        interpolate normalize scaled_dot_product_attention""",
    "ember.nn.init": """uniform_ normal_ constant_ zeros_ ones_ xavier_uniform_ xavier_normal_
        kaiming_uniform_ kaiming_normal_ orthogonal_ trunc_normal_""",
    "ember.nn.utils": "clip_grad_norm_ clip_grad_value_ parameters_to_vector vector_to_parameters",
    "ember.optim": "SGD Adam AdamW RMSprop Adagrad Optimizer",
    "ember.optim.Optimizer": "zero_grad step state_dict load_state_dict add_param_group",
    "ember.optim.lr_scheduler": """StepLR MultiStepLR ExponentialLR CosineAnnealingLR LinearLR
        LambdaLR OneCycleLR SequentialLR ReduceLROnPlateau""",
    "ember.cuda": """is_available device_count synchronize manual_seed memory_allocated
        max_memory_allocated empty_cache""",
    "ember.amp": "GradScaler",
    "ember.jit": "trace load",
    "ember.onnx": "export",
}

# properties and plain attributes: present, but no docstring of their own to ask for
TENSOR_ATTRIBUTES = "shape dtype device T mT grad grad_fn is_leaf".split()


def _owner(path: str):
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, _, attr = path.rpartition(".")
        return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("owner", sorted(CONTRACT))
def test_every_promised_name_exists_with_a_docstring(owner):
    obj = _owner(owner)
    missing, undocumented = [], []
    for name in CONTRACT[owner].split():
        if not hasattr(obj, name):
            missing.append(name)
            continue
        value = getattr(obj, name)
        if (inspect.isroutine(value) or inspect.isclass(value)) and not inspect.getdoc(value):
            undocumented.append(name)
    assert not missing, f"{owner} lacks {missing}"
    assert not undocumented, f"{owner}: no docstring on {undocumented}"


def test_tensor_attributes_are_readable_on_a_tensor():
    t = ember.ones(2, 3, requires_grad=True)
    values = {name: getattr(t, name) for name in TENSOR_ATTRIBUTES}
    assert tuple(values["shape"]) == (2, 3) and values["dtype"] is ember.float32
    assert tuple(values["T"].shape) == (3, 2) and tuple(values["mT"].shape) == (3, 2)
    assert values["is_leaf"] and values["grad"] is None and values["grad_fn"] is None
    assert str(values["device"]) == "cpu"


def test_the_flag_objects_and_aliases_are_reachable():
    # attributes rather than functions: settings objects and the torch.utils.data alias
    assert ember.backends.cuda.matmul.allow_tf32 is False
    assert ember.backends.cudnn.allow_tf32 is True  # PyTorch's defaults
    assert ember.utils.data.DataLoader is ember.data.DataLoader
    assert callable(ember.hub.download_url_to_file) and callable(ember.hub.get_dir)
    assert callable(ember.hub.load_state_dict_from_url)
    for name in ("Categorical", "Normal", "Bernoulli", "Independent"):
        assert inspect.isclass(getattr(ember.distributions, name))
