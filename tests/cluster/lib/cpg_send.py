"""A foreign CPG member: joins a group, multicasts the given messages (hex), leaves.

Runs inside a cluster node, with the root's python3 and libcpg:
    python3 cpg_send.py GROUP HEX|@FILE [...]       (@FILE: one message in hex per line)
Prints `sent N`.
"""
import ctypes
import sys
import time
from ctypes import POINTER, Structure, byref, c_char, c_size_t, c_uint32, c_uint64, c_void_p

CS_OK, CS_ERR_TRY_AGAIN, CPG_TYPE_AGREED = 1, 6, 2


class Name(Structure):
    _fields_ = [("length", c_uint32), ("value", c_char * 128)]


class IoVec(Structure):
    _fields_ = [("base", c_void_p), ("len", c_size_t)]


DELIVER = ctypes.CFUNCTYPE(None, c_uint64, c_void_p, c_uint32, c_uint32, c_void_p, c_size_t)
CONFCHG = ctypes.CFUNCTYPE(None, c_uint64, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t,
                           c_void_p, c_size_t)


class Callbacks(Structure):
    _fields_ = [("deliver", DELIVER), ("confchg", CONFCHG)]


def main(group, messages):
    cpg = ctypes.CDLL("libcpg.so.4")
    cpg.cpg_mcast_joined.argtypes = [c_uint64, ctypes.c_int, POINTER(IoVec), ctypes.c_uint]
    cpg.cpg_join.argtypes = [c_uint64, POINTER(Name)]
    cpg.cpg_leave.argtypes = [c_uint64, POINTER(Name)]
    cpg.cpg_finalize.argtypes = [c_uint64]
    callbacks = Callbacks(DELIVER(lambda *a: None), CONFCHG(lambda *a: None))
    handle = c_uint64()
    rc = cpg.cpg_initialize(byref(handle), byref(callbacks))
    if rc != CS_OK:
        sys.exit("cpg_initialize: %d" % rc)
    name = Name(len(group), group.encode())
    rc = cpg.cpg_join(handle.value, byref(name))
    if rc != CS_OK:
        sys.exit("cpg_join: %d" % rc)
    time.sleep(0.5)
    sent = 0
    texts = []
    for arg in messages:
        if arg.startswith("@"):
            with open(arg[1:]) as f:
                texts += [line.strip() for line in f if line.strip()]
        else:
            texts.append(arg)
    for text in texts:
        data = bytes.fromhex(text)
        buf = ctypes.create_string_buffer(data, len(data))
        iov = IoVec(ctypes.cast(buf, c_void_p), len(data))
        while True:
            rc = cpg.cpg_mcast_joined(handle.value, CPG_TYPE_AGREED, byref(iov), 1)
            if rc != CS_ERR_TRY_AGAIN:
                break
            time.sleep(0.01)
        if rc != CS_OK:
            sys.exit("cpg_mcast_joined: %d" % rc)
        sent += 1
    time.sleep(0.5)
    cpg.cpg_leave(handle.value, byref(name))
    cpg.cpg_finalize(handle.value)
    print("sent %d" % sent)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
