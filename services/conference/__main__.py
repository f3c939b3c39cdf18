from confbook_common import metrics_dir

# Before anything imports prometheus_client, which chooses its storage on import.
metrics_dir.prepare("conference")

from services.conference.bootstrap import main  # noqa: E402

main()
