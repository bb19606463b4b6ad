"""The sample grid draws one outlined box per valid object."""

from matplotlib.patches import Rectangle

from jdl.data import shapes
from jdl.detection.plot import sample_grid


def test_sample_grid_draws_every_valid_box():
    x, y = shapes.generate("test", 5)
    fig = sample_grid(x, y, shapes.CLASSES, n_cols=3)
    axes = fig.get_axes()
    assert len(axes) == 6
    drawn = [sum(isinstance(p, Rectangle) for p in ax.patches) for ax in axes[:5]]
    assert drawn == list(y["valid"].sum(1))
    assert [t.get_text() for t in axes[0].texts] == [shapes.CLASSES[c] for c in y["labels"][0][y["valid"][0]]]
