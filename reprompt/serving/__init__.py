"""Network services: ``reprompt serve`` (:mod:`.image_service`: images, chat completions, rewrites), the reward
service (:mod:`.reward_service`, render + score over HTTP) and its client (:mod:`.reward_client`), on the
shared HTTP pieces of :mod:`.http`. Importing this package loads neither FastAPI nor torch.
"""
