"""The ``app-feed`` kind: a JSON Feed for a mobile app and the media it points to (``adapter``), its
config block (``options``) and the optional push notification through FCM (``fcm``)."""
