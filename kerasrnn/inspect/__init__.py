"""`kerasrnn inspect`: what a trained network learned, as one self-contained HTML report.

    recompute.py  every layer's h, an LSTM's c and the gates, recomputed in numpy from the weights
    features.py   text features (inside quotes, bracket depth, ...) and the cells that track them
    ngram.py      the n-gram baseline the model is measured against
    report.py     gathers the analyses and writes the HTML page (report.html holds its script and style)
    lstmvis.py    the states in the layout LSTMVis reads
"""
