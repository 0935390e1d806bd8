"""Scoring one trial: features → int8 RNN + range-of-motion rule → decision.

The one interface is ``score(trial) -> Result`` (:class:`device.scoring.types.Scorer`);
:mod:`rules` and :mod:`rnn` implement it and :mod:`decide` combines them.
:func:`device.scoring.decide.score_trial` is what the CLI, the recorder and the web call.
"""
