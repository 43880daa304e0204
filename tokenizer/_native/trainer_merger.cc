// tokenizer._native._trainer's BpeMerger: merge learning (train_merge.h) over the pieces of a PieceCounter.
// `step(n, min_frequency)` releases the GIL while it works, so the caller can drive a progress bar between steps.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "train_merge.h"
#include "trainer_object.h"

namespace trainer_py {

PyTypeObject BpeMergerType = {PyVarObject_HEAD_INIT(nullptr, 0)};

namespace {

// ---------------------------------------------------------------------------------------------------------------
// BpeMerger

struct BpeMergerObject {
    PyObject_HEAD
    train::BpeMerger* merger;
    bool busy;
};

int merger_init(PyObject* self, PyObject* args, PyObject* kwds) {
    static const char* kwlist[] = {"counter", nullptr};
    PyObject* counter;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!:BpeMerger", const_cast<char**>(kwlist), &PieceCounterType,
                                     &counter))
        return -1;
    auto* m = reinterpret_cast<BpeMergerObject*>(self);
    auto* c = reinterpret_cast<PieceCounterObject*>(counter);
    BusyGuard merger_guard(m->busy);
    if (!merger_guard.ok) return -1;
    BusyGuard guard(c->busy);
    if (!guard.ok) return -1;
    delete m->merger;
    m->merger = nullptr;
    std::string err;
    train::BpeMerger* built = nullptr;
    Py_BEGIN_ALLOW_THREADS;
    try {
        auto fresh = std::make_unique<train::BpeMerger>();
        for (const auto& map : *c->shards) {
            for (const auto& slot : map.slots()) {
                if (slot.used) fresh->add_word(map.key(slot), slot.len, slot.count);
            }
        }
        fresh->init();
        built = fresh.release();
    } catch (const std::exception& e) {
        err = e.what();
    }
    Py_END_ALLOW_THREADS;
    if (!built) {
        PyErr_SetString(PyExc_MemoryError, err.c_str());
        return -1;
    }
    m->merger = built;
    return 0;
}

void merger_dealloc(PyObject* self) {
    delete reinterpret_cast<BpeMergerObject*>(self)->merger;
    Py_TYPE(self)->tp_free(self);
}

PyObject* merger_step(PyObject* self, PyObject* args, PyObject* kwds) {
    static const char* kwlist[] = {"max_merges", "min_frequency", nullptr};
    Py_ssize_t max_merges;
    unsigned long long min_frequency = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|K:step", const_cast<char**>(kwlist), &max_merges, &min_frequency))
        return nullptr;
    auto* m = reinterpret_cast<BpeMergerObject*>(self);
    if (!m->merger) {
        PyErr_SetString(PyExc_RuntimeError, "BpeMerger was not initialized");
        return nullptr;
    }
    if (max_merges < 0) {
        PyErr_Format(PyExc_ValueError, "max_merges=%zd must be >= 0", max_merges);
        return nullptr;
    }
    BusyGuard guard(m->busy);
    if (!guard.ok) return nullptr;
    std::vector<std::pair<std::string, std::string>> out;
    std::string err;
    Py_BEGIN_ALLOW_THREADS;
    try {
        m->merger->step(static_cast<size_t>(max_merges), min_frequency, out);
    } catch (const std::exception& e) {
        err = e.what();
    }
    Py_END_ALLOW_THREADS;
    if (!err.empty()) {
        PyErr_SetString(PyExc_RuntimeError, err.c_str());
        return nullptr;
    }
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(out.size()));
    if (!list) return nullptr;
    for (size_t i = 0; i < out.size(); ++i) {
        PyObject* t = Py_BuildValue("(y#y#)", out[i].first.data(), static_cast<Py_ssize_t>(out[i].first.size()),
                                    out[i].second.data(), static_cast<Py_ssize_t>(out[i].second.size()));
        if (!t) {
            Py_DECREF(list);
            return nullptr;
        }
        PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), t);
    }
    return list;
}

PyObject* merger_exhausted(PyObject* self, void*) {
    auto* m = reinterpret_cast<BpeMergerObject*>(self);
    return PyBool_FromLong(m->merger && m->merger->exhausted());
}

PyObject* merger_num_words(PyObject* self, void*) {
    auto* m = reinterpret_cast<BpeMergerObject*>(self);
    return PyLong_FromSize_t(m->merger ? m->merger->num_words() : 0);
}

PyObject* merger_num_pairs(PyObject* self, void*) {
    auto* m = reinterpret_cast<BpeMergerObject*>(self);
    return PyLong_FromSize_t(m->merger ? m->merger->num_pairs() : 0);
}

PyObject* merger_num_skipped(PyObject* self, void*) {
    auto* m = reinterpret_cast<BpeMergerObject*>(self);
    return PyLong_FromSize_t(m->merger ? m->merger->num_skipped() : 0);
}

PyMethodDef merger_methods[] = {
    {"step", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(guarded<merger_step>)),
     METH_VARARGS | METH_KEYWORDS,
     "step(max_merges, min_frequency=1) -> list[tuple[bytes, bytes]]: learn up to max_merges more merges (GIL "
     "released); fewer when no pair with count >= min_frequency is left."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef merger_getset[] = {
    {"exhausted", merger_exhausted, nullptr, "True once no further merge can be learned.", nullptr},
    {"num_words", merger_num_words, nullptr, "Unique pieces of two or more bytes.", nullptr},
    {"num_pairs", merger_num_pairs, nullptr, "Distinct adjacent pairs seen so far.", nullptr},
    {"num_skipped", merger_num_skipped, nullptr, "Pairs never merged because their bytes were already a token.",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

void init_merger_type() {
    BpeMergerType.tp_name = "tokenizer._native._trainer.BpeMerger";
    BpeMergerType.tp_basicsize = sizeof(BpeMergerObject);
    BpeMergerType.tp_flags = Py_TPFLAGS_DEFAULT;
    BpeMergerType.tp_doc = "BPE merge learning over the pieces of a PieceCounter (lazy max-heap, byte-content ties).";
    BpeMergerType.tp_new = PyType_GenericNew;
    BpeMergerType.tp_init = merger_init;
    BpeMergerType.tp_dealloc = merger_dealloc;
    BpeMergerType.tp_methods = merger_methods;
    BpeMergerType.tp_getset = merger_getset;
}

}  // namespace trainer_py
