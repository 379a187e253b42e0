"""keras_impl.process: the noise filters drop only TF-Agents'/TensorFlow's own start-up messages (issue 33, item 9)."""
import importlib.util
import logging
import os

from keras_impl.process import KnownNoise, is_known_noise

TFA_DIR = importlib.util.find_spec("tf_agents").submodule_search_locations[0]
INSIDE_TF_AGENTS = (f"From {os.path.join(TFA_DIR, 'replay_buffers', 'replay_buffer.py')}:324: ReplayBuffer.get_next "
                    "(from tf_agents.replay_buffers.replay_buffer) is deprecated and will be removed in a future "
                    "version.\nInstructions for updating:\nUse `as_dataset(..., single_deterministic_pass=False) "
                    "instead.")
IN_USER_CODE = ("From /home/me/train.py:12: ReplayBuffer.get_next (from tf_agents.replay_buffers.replay_buffer) is "
                "deprecated and will be removed in a future version.\nInstructions for updating:\nUse `as_dataset`.")


def test_deprecation_notices_are_noise_only_when_a_library_made_the_call():
    assert is_known_noise(INSIDE_TF_AGENTS)
    assert not is_known_noise(IN_USER_CODE)  # the user's own call: they can act on it
    assert not is_known_noise("my_function is deprecated and will be removed in a future version")  # no "From"


def test_policy_saver_renaming_is_noise_other_renamings_are_not():
    assert is_known_noise("`0/step_type` is not a valid tf.function parameter name. Sanitizing to `arg_0_step_type`.")
    assert not is_known_noise("`my/input` is not a valid tf.function parameter name. Sanitizing to `my_input`.")


def test_the_filter_drops_the_library_record_and_keeps_the_users():
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger("kcourse-test-noise")
    logger.propagate = False
    logger.addHandler(Keep())
    logger.addFilter(KnownNoise())
    logger.warning(INSIDE_TF_AGENTS)
    logger.warning(IN_USER_CODE)
    assert seen == [IN_USER_CODE]
