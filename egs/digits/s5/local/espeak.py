"""libespeak-ng through ctypes: 16-bit audio plus the synthesiser's own phone and word timings.

Only what the corpus maker needs: one synthesiser per process, synchronous mode, phoneme events on
(eSpeak mnemonics, not IPA). ``synthesize(text, voice, rate, pitch)`` returns the samples and a list
of (start_ms, phone) and (start_ms, text_position) events.
"""

import ctypes
import ctypes.util

import numpy as np

EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
AUDIO_OUTPUT_SYNCHRONOUS = 2
CHARS_UTF8, ENDPAUSE = 0x1, 0x1000
RATE, PITCH = 1, 3  # espeak_PARAMETER


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class Espeak:
    """The process-wide eSpeak NG synthesiser (the C library keeps global state)."""

    def __init__(self):
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as e:
            raise RuntimeError(f"cannot load libespeak-ng ({e}); install it with: apt-get install espeak-ng") from e
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.sample_rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 1)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak_Initialize failed (is espeak-ng-data installed?)")
        self._chunks, self._phones, self._words = [], [], []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: the C side holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples, events):
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                self._phones.append((ev.audio_position, ev.id.string.decode("utf-8", "replace")))
            elif ev.type == EVENT_WORD:
                self._words.append((ev.audio_position, ev.text_position))
            i += 1
        return 0

    def synthesize(self, text, voice, rate=175, pitch=50):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(RATE, int(rate), 0)
        self.lib.espeak_SetParameter(PITCH, int(pitch), 0)
        self._chunks, self._phones, self._words = [], [], []
        data = text.encode()
        rc = self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, CHARS_UTF8 | ENDPAUSE, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed with code {rc} on {text!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, list(self._phones), list(self._words)
