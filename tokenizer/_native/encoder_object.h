// What the translation units of tokenizer._native._encoder share: the Python object and a few binding helpers.
//   encoder.cc        -- module and type: construction, single-text encode/count, pieces, decode, split
//   encoder_batch.cc  -- encode_batch / count_batch: a list of str over native threads (worker_pool.h), GIL released
//   encoder_packed.cc -- encode_packed: many UTF-8 texts side by side in one buffer
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bpe_encoder.h"

namespace encoder_py {

struct EncoderObject {
    PyObject_HEAD bpe::Encoder* enc;
    // One int object per id, built once: lists of ids are filled with INCREFs instead of allocations
    // (building the result list was a third of the time of `encode` on code).
    std::vector<PyObject*>* ints;
};

extern PyObject* invalid_utf8_error;  // shardstore.errors.InvalidUtf8Error, looked up at module init

// RuntimeError unless the encoder was initialized.
bool ready(EncoderObject* self);
// ValueError for a custom pattern (split in Python, then encode_pieces).
bool check_builtin(const bpe::Encoder* enc);
// UTF-8 view of a str (cached by CPython, no copy for ASCII) or of a bytes object. Sets an exception on failure.
bool utf8_view(PyObject* obj, const uint8_t** data, size_t* size);
// A new list of the ids (pre-built int objects when `ints` is given).
PyObject* list_from(const uint32_t* ids, size_t m, const std::vector<PyObject*>* ints = nullptr);

PyObject* Encoder_encode_batch(EncoderObject* self, PyObject* args);
PyObject* Encoder_count_batch(EncoderObject* self, PyObject* args);
PyObject* Encoder_encode_packed(EncoderObject* self, PyObject* args);

}  // namespace encoder_py
