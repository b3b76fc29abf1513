"""Helpers for the TensorFlow introduction: digits data, a tf.data bridge,
the Keras baseline and plots.

The data is scikit-learn's bundled ``load_digits`` (1797 grayscale 8x8 images
of the digits 0-9, pixel intensities 0..16), so nothing is downloaded. All ten
classes are used. Images are flattened to 64 features.

Conventions used throughout the assignment (same as the course):
- a design matrix ``X`` has shape (64, m): one example per column;
- labels ``Y`` are one-hot with shape (C, m), C = 10, one example per column.
tf.data pipelines work the other way round (one example per element, i.e. per
row); ``dataset_to_columns`` turns such a pipeline back into column matrices.

TensorFlow, scikit-learn and matplotlib are imported inside the functions so
that importing this module stays cheap. In a Jupyter kernel, importing it
first (as the notebook's imports cell does) imports TensorFlow quietly.
"""
import os
import sys

import numpy as np

# TensorFlow's C++ libraries print start-up lines to file descriptor 2 while
# they load (oneDNN, "All log messages before absl::InitializeLog()"), before
# any log level applies: TF_CPP_MIN_LOG_LEVEL hides later messages, not these
# (checked with TensorFlow 2.21). In a notebook they are a red block, the first
# thing a learner sees, so in a Jupyter kernel TensorFlow is imported here
# with descriptor 2 pointed at /dev/null. A failed import still raises.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


if "ipykernel" in sys.modules:  # a learner's notebook; the grader's processes import TensorFlow themselves
    _import_tensorflow_quietly()

N_FEATURES = 64    # 8 x 8 pixels
N_CLASSES = 10     # digits 0..9
PIXEL_MAX = 16.0   # load_digits intensities are integers in 0..16


def load_digits_split(test_size=0.25, seed=1):
    """Load the digits and split them into a training and a test set.

    The split is stratified (every digit keeps its share in both sets) and
    fixed by ``seed``.

    Returns:
    x_train -- raw pixel intensities, float32 array of shape (m_train, 64), values 0..16
    y_train -- integer labels, int64 array of shape (m_train,), values 0..9
    x_test  -- float32 array of shape (m_test, 64)
    y_test  -- int64 array of shape (m_test,)
    With the defaults m_train = 1347 and m_test = 450.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    return x_train, y_train, x_test, y_test


def digits_datasets(test_size=0.25, seed=1):
    """The same split as ``load_digits_split`` as four tf.data.Dataset objects.

    Returns (x_train, y_train, x_test, y_test); each image element is a float32
    tensor of shape (64,) with raw intensities 0..16, each label element an
    int64 scalar tensor.
    """
    import tensorflow as tf

    x_train, y_train, x_test, y_test = load_digits_split(test_size, seed)
    return (tf.data.Dataset.from_tensor_slices(x_train),
            tf.data.Dataset.from_tensor_slices(y_train),
            tf.data.Dataset.from_tensor_slices(x_test),
            tf.data.Dataset.from_tensor_slices(y_test))


def normalize(image):
    """Map function for tf.data: scale one image to [0, 1] as float32.

    image -- tensor of shape (64,), raw intensities 0..16
    Returns a float32 tensor of shape (64,).
    """
    import tensorflow as tf

    return tf.cast(image, tf.float32) / PIXEL_MAX


def dataset_to_columns(dataset):
    """Stack a dataset of equally shaped vectors into a column matrix.

    dataset -- tf.data.Dataset whose m elements are tensors of shape (n,)
    Returns a numpy array of shape (n, m): element i becomes column i.
    """
    return np.stack(list(dataset.as_numpy_iterator()), axis=1)


def accuracy(logits, Y):
    """Fraction of columns whose largest logit is at the one-hot label.

    logits -- array of shape (C, m)
    Y      -- one-hot labels, shape (C, m)
    """
    logits = np.asarray(logits)
    Y = np.asarray(Y)
    return float(np.mean(np.argmax(logits, axis=0) == np.argmax(Y, axis=0)))


def build_keras_baseline(learning_rate=0.001, n_classes=N_CLASSES, seed=1):
    """The assignment's network as a compiled keras.Sequential model.

    LINEAR(25) -> RELU -> LINEAR(12) -> RELU -> LINEAR(n_classes), logits out,
    Glorot-normal weights. Keras wants one example per row: inputs (m, 64),
    one-hot labels (m, n_classes).
    """
    import tensorflow as tf

    def init():
        return tf.keras.initializers.GlorotNormal(seed=seed)

    model = tf.keras.Sequential([
        tf.keras.Input(shape=(N_FEATURES,)),
        tf.keras.layers.Dense(25, activation="relu", kernel_initializer=init()),
        tf.keras.layers.Dense(12, activation="relu", kernel_initializer=init()),
        tf.keras.layers.Dense(n_classes, kernel_initializer=init()),
    ])
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def plot_digits(x, y, n=10):
    """Show the first n images with their labels.

    x -- array of shape (m, 64), one image per row
    y -- integer labels, shape (m,)
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(1.2 * n, 1.5))
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(np.asarray(x[i]).reshape(8, 8), cmap="gray_r")
        ax.set_title(str(int(y[i])))
        ax.axis("off")
    plt.show()


def plot_learning_curves(curves, ylabel="cost", title=None):
    """Plot several per-epoch curves on one set of axes.

    curves -- dict mapping a label to a sequence of per-epoch values
    """
    import matplotlib.pyplot as plt

    plt.figure(figsize=(6, 3.5))
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        plt.plot(np.arange(1, len(values) + 1), values, label=label)
    plt.xlabel("epoch")
    plt.ylabel(ylabel)
    if title:
        plt.title(title)
    plt.legend()
    plt.show()
