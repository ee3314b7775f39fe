"""`panel serve app.py --setup warm_up.py`: compile and warm up once, before the first visitor."""

from widgets.page import warm_up
from widgets.state import warm_population

warm_up()
warm_population()
