"""The conformance suite, installed with the package so that any project can run it:

    pytest --pyargs lstm_ref.suite --lstm-impl mypkg.lstm:make

The tests take their configurations and candidate from the ``lstm_ref.plugin``
fixtures (``lstm_config``, ``lstm_factory``, ``lstm_seed``).
"""
