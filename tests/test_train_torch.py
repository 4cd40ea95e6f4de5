"""What only the PyTorch trainer does; the shared contract is in test_trainers.py."""

from __future__ import annotations

import pytest
import torch

from houseprice.config import TrainerConfig
from houseprice.trainers.common import TrainingDivergedError
from houseprice.trainers.torch_trainer import train_torch
from tests.conftest import standardized_data


def test_the_thread_cap_holds_during_the_fit_and_is_undone_after():
    # torch.set_num_threads is process-wide: a fit that left its cap behind would slow the rest.
    before = torch.get_num_threads()
    capped = TrainerConfig(optimizer="sgd", learning_rate=1e-3, max_epochs=3, threads=before + 1)
    during: list[int] = []
    train_torch(
        standardized_data(), capped, 0, lambda _line: during.append(torch.get_num_threads())
    )
    assert during[0] == before + 1  # the first epoch's progress line is logged mid-fit
    assert torch.get_num_threads() == before
    diverging = capped.model_copy(update={"learning_rate": 1e3})
    with pytest.raises(TrainingDivergedError):
        train_torch(standardized_data(), diverging, seed=0)
    assert torch.get_num_threads() == before
