"""Decision rules: LSP majority, SM choice(V), mid-value select."""

from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import finite
from voter.core.values import ERROR
from voter.core.vote import choice, majority, mid_value, vote_discrete, vote_readings


def test_majority_needs_strict_majority() -> None:
    """A tie is not a majority: the default wins."""
    assert "retreat" == majority(["attack", "retreat"], "retreat")
    assert "attack" == majority(["attack", "attack", "retreat"], "retreat")
    assert "retreat" == majority([], "retreat")


def test_choice_is_the_single_value_else_default() -> None:
    """choice(V): one value -> it; none or several -> default."""
    assert "attack" == choice(["attack", "attack"], "retreat")
    assert "retreat" == choice(["attack", "x"], "retreat")
    assert "retreat" == choice([], "retreat")


def test_mid_value_is_lower_median() -> None:
    """With an even count the lower of the middle two is chosen (a real reading)."""
    assert 2.0 == mid_value([4.0, 1.0, 2.0, 3.0])
    assert 2.0 == mid_value([3.0, 1.0, 2.0])


def test_vote_ignores_error_entries_and_channels() -> None:
    """ERROR vectors and None channels are skipped, never read as numbers."""
    vector = [(1.0, None, 5.0), ERROR, (3.0, None, 7.0), (2.0, 9.0, 6.0)]
    assert (2.0, 9.0, 6.0) == vote_readings(vector, 3)
    assert (None, None) == vote_readings([ERROR, ERROR], 2)


def test_vote_discrete_majority_of_non_error() -> None:
    """Discrete vote: majority with default over non-ERROR entries."""
    assert "up" == vote_discrete(["up", ERROR, "up", "down"], "hold")


@given(st.lists(finite, min_size=3, max_size=9), finite)
def test_one_liar_cannot_push_output_outside_loyal_range(loyal: list[float], lie: float) -> None:
    """With at least 3 loyal samples and one liar, the median stays within the loyal range."""
    out = mid_value([*loyal, lie])
    assert min(loyal) <= out <= max(loyal)
