"""Shapes of the page forms. They check only what a browser can get wrong (missing fields,
lengths the database cannot hold); every rule of the registry is checked by the service the
view calls, and its `InvalidInput` lands next to the field through `add_domain_error`."""

from django import forms

from .permissions import GRANTABLE


def add_domain_error(form, exc, default_field=None):
    """Put a domain error's message next to the field it is about: the one the error names
    (`RegistryError.field`) if the form has it, else the one its message names, else
    `default_field`."""
    message = getattr(exc, "message", str(exc))
    form.errors  # noqa: B018 - runs the form's own cleaning first, so add_error can follow
    field = getattr(exc, "field", None)
    if field not in form.fields:
        field, lowered = default_field, message.lower()
        for name in form.fields:
            if f"tag {name}" in lowered or lowered.startswith(name):
                field = name
                break
    if field not in form.fields:
        field = None
    form.add_error(field, message)
    return form


class PageForm(forms.Form):
    """Several forms share a page: each gets its own id prefix so labels point at its fields."""

    id_prefix = "id"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class DescriptionForm(PageForm):
    id_prefix = "desc"
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 8}), label="Description (Markdown)", strip=False
    )


class TagForm(PageForm):
    id_prefix = "tag"
    key = forms.CharField(max_length=250, label="Tag key", widget=forms.TextInput(attrs={"placeholder": "task"}))
    value = forms.CharField(
        max_length=5000, required=False, label="Tag value", strip=False,
        widget=forms.TextInput(attrs={"placeholder": "classification"}),
    )


class TagDeleteForm(forms.Form):
    key = forms.CharField(max_length=250)


class AliasForm(PageForm):
    id_prefix = "alias"
    alias = forms.CharField(max_length=255, label="Alias", widget=forms.TextInput(attrs={"placeholder": "Champion"}))
    version = forms.CharField(
        max_length=12, label="Version", widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "3"})
    )


class AliasDeleteForm(forms.Form):
    alias = forms.CharField(max_length=255)


class RenameForm(PageForm):
    id_prefix = "rename"
    new_name = forms.CharField(max_length=767, label="New name")


class ConfirmDeleteForm(PageForm):
    """The person types the full name of what goes; checked here against the real name."""

    confirm_name = forms.CharField(max_length=800, label="Type the full name to confirm", strip=False)

    def __init__(self, *args, expected, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm_name(self):
        value = self.cleaned_data["confirm_name"]
        if value.strip() != self.expected:
            raise forms.ValidationError(f"Type {self.expected} exactly to confirm.")
        return value


class GrantForm(PageForm):
    id_prefix = "grant"
    principal = forms.CharField(
        max_length=160, label="Principal (user or group)",
        widget=forms.TextInput(attrs={"placeholder": "alice, ml-admins or group:ml-admins"}),
    )
    privilege = forms.ChoiceField(label="Privilege")

    def __init__(self, *args, level, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["privilege"].choices = [(p, p) for p in GRANTABLE[level]]


class RevokeForm(forms.Form):
    principal = forms.CharField(max_length=160)
    privilege = forms.CharField(max_length=40)


class OwnerForm(PageForm):
    id_prefix = "owner"
    principal = forms.CharField(
        max_length=160, label="New owner (user or group)", widget=forms.TextInput(attrs={"placeholder": "ml-admins"})
    )


class CreateForm(PageForm):
    id_prefix = "create"
    name = forms.CharField(max_length=255, label="Name")
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Description (Markdown)", strip=False
    )


class RegisterFromRunForm(PageForm):
    """Register model (run page): what to register, and into which model. The lists offer only
    what the user may use; the service decides again (a tampered value is refused there)."""

    id_prefix = "register"
    OTHER_PATH = "path"
    source = forms.ChoiceField(label="What to register")
    path = forms.CharField(
        max_length=1000, required=False, label="Artifact path in this run",
        widget=forms.TextInput(attrs={"placeholder": "model"}),
    )
    target = forms.ChoiceField(
        choices=[("existing", "A model I own"), ("new", "A new model")], initial="existing",
        widget=forms.RadioSelect, label="Register into",
    )
    model = forms.CharField(max_length=767, required=False, label="Model")
    schema = forms.CharField(max_length=520, required=False, label="Schema")
    name = forms.CharField(max_length=255, required=False, label="New model name",
                           widget=forms.TextInput(attrs={"placeholder": "iris_classifier"}))

    def __init__(self, *args, sources, models, schemas, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [*sources, (self.OTHER_PATH, "Another artifact path of this run…")]
        self.fields["model"].widget = forms.Select(choices=[("", "— choose —"), *[(m, m) for m in models]])
        self.fields["schema"].widget = forms.Select(choices=[("", "— choose —"), *[(s, s) for s in schemas]])

    def clean(self):
        data = super().clean()
        if data.get("source") == self.OTHER_PATH and not data.get("path", "").strip("/ "):
            self.add_error("path", "Give the path of a model folder inside this run's artifacts.")
        if data.get("target") == "existing" and not data.get("model"):
            self.add_error("model", "Choose a model you own.")
        if data.get("target") == "new":
            if not data.get("schema"):
                self.add_error("schema", "Choose a schema where you may create models.")
            if not data.get("name"):
                self.add_error("name", "Name the new model.")
        return data

    def source_uri(self, run_id):
        """The MLflow source the choice names (`runs:/<run>/<path>` for a typed path)."""
        if self.cleaned_data["source"] == self.OTHER_PATH:
            return f"runs:/{run_id}/{self.cleaned_data['path'].strip('/')}"
        return self.cleaned_data["source"]
