"""Matrix products against NumPy."""
import numpy as np
import pytest

import kiln as kn
from utils import assert_close, random_array


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4, 2)), ((2, 4), (4,)), ((4,), (4,)),
                                    ((2, 1, 3, 4), (5, 4, 6)), ((7, 3, 4), (4, 2))])
def test_matmul(rng, device, shapes):
    x = random_array(rng, shapes[0]).astype(np.float64)
    y = random_array(rng, shapes[1]).astype(np.float64)
    assert_close(kn.matmul(x.astype(np.float32), y.astype(np.float32), stream=device), x @ y, rtol=1e-5, atol=1e-5)
    assert_close(kn.matmul(x, y), x @ y, rtol=1e-12, atol=1e-12, dtype=kn.float64)


def test_matmul_integers_and_mixed(rng):
    x = random_array(rng, (3, 4), np.int32, low=-5, high=5)
    y = random_array(rng, (4, 2), np.int32, low=-5, high=5)
    assert_close(kn.matmul(x, y), x @ y, dtype=kn.int32)
    z = random_array(rng, (4, 2))
    assert kn.matmul(x, z).dtype == kn.float32
    with pytest.raises(ValueError):
        kn.matmul(kn.zeros((2, 3)), kn.zeros((4, 2)))


def test_addmm_outer_inner_tensordot(rng):
    a = random_array(rng, (3, 4)).astype(np.float64)
    b = random_array(rng, (4, 5)).astype(np.float64)
    c = random_array(rng, (5,)).astype(np.float64)
    assert_close(kn.addmm(c, a, b, alpha=0.5, beta=2.0), 2.0 * c + 0.5 * (a @ b), rtol=1e-12)
    assert_close(kn.addmm(c, a, b), c + a @ b, rtol=1e-12)
    assert_close(kn.outer(a[0], c), np.outer(a[0], c), rtol=1e-12)
    assert_close(kn.inner(a, b.T), np.inner(a, b.T), rtol=1e-12)
    t = random_array(rng, (3, 4, 5)).astype(np.float64)
    u = random_array(rng, (4, 5, 2)).astype(np.float64)
    assert_close(kn.tensordot(t, u), np.tensordot(t, u), rtol=1e-12)
    assert_close(kn.tensordot(t, u, axes=([1], [0])), np.tensordot(t, u, axes=([1], [0])), rtol=1e-12)


@pytest.mark.parametrize("spec,shapes", [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
                                         ("ii->", [(4, 4)]), ("ij->ji", [(3, 5)]), ("ij,kj", [(2, 3), (4, 3)]),
                                         ("...ij->...ji", [(2, 3, 4)]), ("i,i->", [(6,), (6,)]),
                                         ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)])])
def test_einsum(rng, spec, shapes):
    ops = [random_array(rng, s).astype(np.float64) for s in shapes]
    assert_close(kn.einsum(spec, *ops), np.einsum(spec, *ops), rtol=1e-12, atol=1e-12)
