"""What only the TensorFlow trainer does; the shared contract is in test_trainers.py."""

from __future__ import annotations

import pytest

from houseprice.config import TrainerConfig
from houseprice.trainers.common import DeviceUnavailableError
from houseprice.trainers.tensorflow_trainer import train_tensorflow
from tests.conftest import standardized_data


def test_mps_is_refused_for_tensorflow():
    with pytest.raises(DeviceUnavailableError, match="torch only"):
        train_tensorflow(standardized_data(), TrainerConfig(device="mps"), seed=0)
