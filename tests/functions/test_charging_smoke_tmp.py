from tests.functions.charging_world import *

def test_smoke(world):
    card_on_file(world)
    r = charge(world, "40.00")
    print(r.status, r.body)
    r2 = charge(world)
    print(r2.status, r2.body)
    print(world.row("invoice", world.ids["invoice1"]))
    assert_books_agree(world)
