"""The built-in parity sentences for text models: varied topics, registers and lengths (1 to ~200 tokens).

They exercise short inputs, padding, punctuation, numbers, non-ASCII text and long inputs near the usual
sequence limits, so an INT8 model that only works on tidy mid-length English does not pass the gate.
"""

from __future__ import annotations

_LONG = (
    "Edge deployment means running a model where the data is produced: on a camera, a gateway, a phone or a "
    "small single-board computer bolted to a machine on a factory floor. The constraints are different from the "
    "data centre. Memory is measured in hundreds of megabytes rather than hundreds of gigabytes, the processor "
    "may have no vector unit worth the name, power may come from a battery or a solar panel, and the network "
    "link can disappear for days at a time. A deployment kit therefore has to check every artifact it builds "
    "against a trusted reference, record what it measured, and refuse to ship anything that does not pass."
)

SENTENCES: tuple[str, ...] = (
    "Hi.",
    "ok",
    "Yes!",
    "Thanks a lot.",
    "Where is the nearest train station?",
    "The quick brown fox jumps over the lazy dog.",
    "I would like to book a table for two at eight tonight.",
    "Please restart the gateway after the firmware update finishes.",
    "The temperature sensor on line 3 reported 87.5 degrees Celsius at 14:32.",
    "Can you recommend a good book about the history of mathematics?",
    "My order #48213 arrived damaged and I want a refund.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The central bank raised interest rates by 25 basis points on Wednesday.",
    "She played the cello with a warmth that filled the whole concert hall.",
    "Error: connection refused (errno 111) while contacting broker at 10.0.0.12:1883",
    "How do I reset my password if I no longer have access to my email?",
    "The Raspberry Pi 4 has a quad-core Cortex-A72 processor running at 1.8 GHz.",
    "Machine learning models can be quantized to 8-bit integers to save memory.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le café était fermé, alors nous sommes allés à la boulangerie.",
    "¿Dónde está la biblioteca más cercana?",
    "東京は日本の首都です。",
    "Emojis like 🙂 and 🚀 show up in real user messages too.",
    "def add(a, b):\n    return a + b",
    "SELECT name, price FROM products WHERE price < 20 ORDER BY price;",
    "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
    "The patient reported mild headaches and dizziness after starting the new medication.",
    "Our quarterly revenue grew 12% year over year, driven mostly by subscriptions.",
    "The hikers reached the summit just before the storm rolled in from the west.",
    "Swap the air filter every three months, or monthly in dusty environments.",
    "A neural network is a function approximator built from layers of simple units.",
    "He forgot his umbrella, so he arrived at the interview completely soaked.",
    "The museum's new exhibition explores the art of the Byzantine empire.",
    "Battery level low: 7% remaining, connect the charger to avoid data loss.",
    "Tomatoes, basil, garlic and olive oil are all you need for a simple sauce.",
    "The committee postponed its decision until more evidence could be gathered.",
    "Is it safe to update the kernel on a production device without a rollback plan?",
    "The satellite completed its orbit and transmitted the images to the ground station.",
    "Children learn languages faster when they hear them spoken at home every day.",
    "The vibration sensor flagged an anomaly on pump 7 shortly after midnight.",
    "Remember to water the plants while I'm away next week, especially the ferns.",
    "Quantum computers use qubits, which can represent superpositions of states.",
    "The contract terminates automatically unless either party gives written notice.",
    "We watched the sunset from the pier while the fishermen packed up their nets.",
    "Upgrade notice: version 2.4.1 fixes a memory leak in the telemetry uploader.",
    "Why does my sourdough bread come out flat even though the starter is active?",
    "The marathon runner collapsed near the finish line but was treated quickly by medics.",
    "In 1969, Apollo 11 landed on the Moon and Neil Armstrong stepped onto its surface, "
    "watched by hundreds of millions of people on television around the world.",
    "The city council approved a plan to add protected bike lanes on the main avenues, "
    "after months of public consultation and a pilot project that reduced accidents.",
    "When the power failed, the backup generator started within seconds, but the cooling system "
    "took several minutes to recover, and two of the servers shut down to protect themselves.",
    "Customer feedback: the app is fast and the interface is clean, but notifications arrive late "
    "and the battery drains quickly when location services are enabled in the background.",
    "Researchers found that a short walk after meals helps regulate blood sugar levels, "
    "especially in older adults, and recommended ten to fifteen minutes of light activity.",
    _LONG,
    _LONG + " " + _LONG.lower(),
    "Troubleshooting steps: check the power supply, reseat the SD card, verify the boot partition, "
    "inspect the serial console for kernel messages, and compare the device tree with the reference image; "
    "if the board still does not boot, reflash the image and restore the configuration from backup.",
    "word " * 40,
    "The end.",
)


def builtin_sentences() -> list[str]:
    """At least 50 varied sentences of different lengths, for parity and (as a fallback) calibration."""
    return list(SENTENCES)
