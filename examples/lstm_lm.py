"""A stateful LSTM language model, as pytorch/examples' word_language_model trains it.

    schedtui run examples.lstm_lm:experiment --preset examples/lstm_lm.toml

A synthetic corpus (a seeded Markov chain over 40 tokens) is cut into columns and
read in order in chunks of `bptt` tokens; the LSTM's hidden state is carried from one
chunk to the next in `ctx.hidden` (detached: truncated backpropagation through time)
and starts afresh each epoch. Batches are (inputs, targets) chunks from a DataLoader of
the factory's own, in its own order. The state in `ctx` is saved in checkpoints, so a
resumed run carries on exactly. Runs on a CPU in seconds.
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import schedtui

VOCAB, BPTT, COLUMNS = 40, 16, 8


class Chunks(Dataset):
    def __init__(self, tokens: torch.Tensor):
        n = tokens.numel() // COLUMNS
        self.cols = tokens[: n * COLUMNS].view(COLUMNS, n).t().contiguous()  # (time, columns)

    def __len__(self):
        return (self.cols.shape[0] - 1) // BPTT

    def __getitem__(self, i):
        x = self.cols[i * BPTT:(i + 1) * BPTT]
        return x, self.cols[i * BPTT + 1:(i + 1) * BPTT + 1]


class LM(nn.Module):
    def __init__(self, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.drop = nn.Dropout(0.2)
        self.lstm = nn.LSTM(dim, dim)
        self.out = nn.Linear(dim, VOCAB)

    def forward(self, x, hidden):
        y, hidden = self.lstm(self.drop(self.embed(x)), hidden)
        return self.out(self.drop(y)), hidden


def corpus(n: int, g: torch.Generator) -> torch.Tensor:
    trans = torch.softmax(3 * torch.randn(VOCAB, VOCAB, generator=g), -1)
    tokens = [0]
    for _ in range(n - 1):
        tokens.append(int(torch.multinomial(trans[tokens[-1]], 1, generator=g)))
    return torch.tensor(tokens)


def train_step(model, batch, ctx):
    x, y = batch
    if ctx.batch == 0 or getattr(ctx, "hidden", None) is None:  # a new epoch reads the text from its start
        ctx.hidden = None
    out, hidden = model(x, ctx.hidden)
    ctx.hidden = tuple(h.detach() for h in hidden)
    return nn.functional.cross_entropy(out.reshape(-1, VOCAB), y.reshape(-1))


def eval_step(model, batch, ctx):
    x, y = batch
    out, _ = model(x, None)
    loss = nn.functional.cross_entropy(out.reshape(-1, VOCAB), y.reshape(-1))
    return {"loss": loss, "acc": (out.argmax(-1) == y).float().mean(), "ppl": loss.exp()}


def experiment(cfg: dict) -> schedtui.Experiment:
    g = torch.Generator().manual_seed(cfg["seed"])
    text = corpus(3000, g)
    torch.manual_seed(cfg["seed"])
    model = LM()
    return schedtui.Experiment(
        model=model,
        train=DataLoader(Chunks(text[:2400]), batch_size=None),  # in order: the hidden state follows the text
        val=DataLoader(Chunks(text[2400:]), batch_size=None),
        optimizer=torch.optim.SGD(model.parameters(), lr=2.0),
        train_step=train_step,
        eval_step=eval_step,
    )
