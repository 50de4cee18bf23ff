"""The events relay: public CloudEvents on modelreg.public.v1 and webhooks."""

from modelreg.events.main import main

main()
