from django.db import migrations, models
import django.utils.timezone


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="DelayedMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("due_date", models.DateTimeField(db_index=True)),
                ("channel_name", models.CharField(max_length=200)),
                ("content", models.BinaryField()),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"ordering": ["due_date", "id"]},
        ),
    ]
