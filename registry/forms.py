"""Shapes of the page forms. They check only what a browser can get wrong (missing fields,
lengths the database cannot hold); every rule of the registry is checked by the service the
view calls, and its `InvalidInput` lands next to the field through `add_domain_error`."""

from django import forms

from .permissions import GRANTABLE


def add_domain_error(form, exc, default_field=None):
    """Put a domain error's message next to the field it is about (the messages name it)."""
    message = getattr(exc, "message", str(exc))
    form.errors  # noqa: B018 - runs the form's own cleaning first, so add_error can follow
    field = default_field
    lowered = message.lower()
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
