"""The review console: review state and the computed queue of each classification (with the queues'
keyset indexes), claims, comments, skips and the categories blurred as disturbing."""

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('console', '0003_role_groups'),
        ('policies_app', '0002_immutable_versions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Claim',
            fields=[
                ('item', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='claim', serialize=False, to='console.item')),
                ('claimed_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name='Comment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('text', models.TextField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name='DisturbingCategory',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.CharField(help_text='Category code or label, e.g. SH2 or VIOLENCE', max_length=60, unique=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'verbose_name_plural': 'disturbing categories',
                'ordering': ['code'],
            },
        ),
        migrations.CreateModel(
            name='Skip',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.AddField(
            model_name='classification',
            name='review_status',
            field=models.CharField(choices=[('open', 'Awaiting review'), ('escalated', 'Escalated to a senior'), ('decided', 'Decided')], default='open', max_length=10),
        ),
        migrations.AddField(
            model_name='classification',
            name='review_rank',
            field=models.GeneratedField(db_persist=True, expression=models.Case(models.When(then=models.Value(0), violation=True), models.When(then=models.Value(1), violation__isnull=True), default=models.Value(2)), output_field=models.SmallIntegerField()),
        ),
        migrations.AddField(
            model_name='classification',
            name='queue',
            field=models.GeneratedField(db_persist=True, expression=models.Case(models.When(models.Q(('needs_review', False), ('review_status', 'decided'), ('status__in', ['queued', 'running']), _connector='OR'), then=models.Value(None)), models.When(review_status='escalated', then=models.Value('escalated')), models.When(models.Q(('status', 'done'), _negated=True), then=models.Value('no_verdict')), models.When(stage='fast', then=models.Value('qc'), violation=False), default=models.Value('review')), output_field=models.CharField(choices=[('review', 'Verdicts to review'), ('no_verdict', 'No usable verdict'), ('qc', 'Quality checks'), ('escalated', 'Escalated')], max_length=12, null=True)),
        ),
        migrations.AddIndex(
            model_name='classification',
            index=models.Index(condition=models.Q(('queue__isnull', False)), fields=['created_at', 'id'], include=('queue', 'review_rank', 'policy_version', 'stage', 'confidence', 'label', 'item'), name='review_oldest'),
        ),
        migrations.AddIndex(
            model_name='classification',
            index=models.Index(condition=models.Q(('queue__isnull', False)), fields=['review_rank', 'created_at', 'id'], include=('queue', 'policy_version', 'stage', 'confidence', 'label', 'item'), name='review_priority'),
        ),
        migrations.AddIndex(
            model_name='classification',
            index=models.Index(condition=models.Q(('queue__isnull', False)), fields=['queue', 'created_at', 'id'], include=('review_rank', 'policy_version', 'stage', 'confidence', 'label', 'item'), name='review_queue_oldest'),
        ),
        migrations.AddIndex(
            model_name='classification',
            index=models.Index(condition=models.Q(('queue__isnull', False)), fields=['queue', 'review_rank', 'created_at', 'id'], include=('policy_version', 'stage', 'confidence', 'label', 'item'), name='review_queue_priority'),
        ),
        migrations.AddConstraint(
            model_name='classification',
            constraint=models.CheckConstraint(condition=models.Q(('review_status__in', ['open', 'escalated', 'decided'])), name='classification_review_status_valid'),
        ),
        migrations.AddField(
            model_name='claim',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='comment',
            name='author',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='comment',
            name='classification',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='comments', to='console.classification'),
        ),
        migrations.AddField(
            model_name='comment',
            name='item',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='comments', to='console.item'),
        ),
        migrations.AddField(
            model_name='disturbingcategory',
            name='created_by',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='skip',
            name='classification',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='skips', to='console.classification'),
        ),
        migrations.AddField(
            model_name='skip',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='claim',
            index=models.Index(fields=['expires_at'], name='claim_expiry'),
        ),
        migrations.AddConstraint(
            model_name='claim',
            constraint=models.CheckConstraint(condition=models.Q(('expires_at__gt', models.F('claimed_at'))), name='claim_expires_after_start'),
        ),
        migrations.AddIndex(
            model_name='comment',
            index=models.Index(fields=['item', 'created_at'], name='comment_item'),
        ),
        migrations.AddConstraint(
            model_name='comment',
            constraint=models.CheckConstraint(condition=models.Q(('text', ''), _negated=True), name='comment_text_not_empty'),
        ),
        migrations.AddConstraint(
            model_name='disturbingcategory',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('code', ''), _negated=True), ('code', django.db.models.functions.text.Upper('code'))), name='disturbing_code_upper'),
        ),
        migrations.AddIndex(
            model_name='review',
            index=models.Index(condition=models.Q(('decision', 'override')), fields=['reviewer', '-created_at'], name='review_override_reasons'),
        ),
        migrations.AddIndex(
            model_name='skip',
            index=models.Index(fields=['user', 'classification', '-created_at'], name='skip_user'),
        ),
    ]
