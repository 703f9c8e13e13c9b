"""`chatchannels status`: the whole pipeline on one screen, healthy or not and why.

`probes.py` reads what each part says about itself (the stack's services, the store, the
topic's end offsets, the publishers' files, `serve`); `verdicts.py` turns those facts into
the reasons the pipeline is not healthy, as pure functions; `cli.py` is the commands'
skin, `completeness` beside `status`.
"""
