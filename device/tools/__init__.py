"""Workstation tooling: benchmarks, training, evaluation — apart from the runtime.

The runtime (``device.camera``, ``vision``, ``trial``, ``scoring``, ``store``, ``web``,
``panel``, ``app``, …) is what the appliance runs; nothing in it imports this package
(``tests/test_layers.py`` checks it). The modules here import the runtime to measure, train
or evaluate it:

* :mod:`~device.tools.cli`: the ``flexscore bench`` and ``flexscore train`` sub-commands;
* :mod:`~device.tools.bench`: ``flexscore bench`` (models, tracker, int8 accuracy, the
  MediaPipe comparison, scoring and daemon-loop sections);
* :mod:`~device.tools.scoring_bench`, :mod:`~device.tools.loop_bench`: the scoring and
  daemon-loop sections;
* :mod:`~device.tools.training`: the Keras scorer, int8 export and ``train --from-store``
  (the candidate *building*; checking and installing a candidate is runtime:
  :mod:`device.scoring.candidate`, :mod:`device.scoring.installed`);
* :mod:`~device.tools.manifest`: writing model manifest entries (reading them is
  :func:`device.vision.runtime.load_manifest`);
* :mod:`~device.tools.evaluate`: tracker accuracy against a reference;
* ``reference_hands.py``: MediaPipe's Hands on given frames, run as a script by the python of
  the reference venv (it imports neither ``device`` nor this package).

TensorFlow and mediapipe are never imported at module level here either: the package ships in
the wheel (and so on the Pi) and its modules must import there.
"""
