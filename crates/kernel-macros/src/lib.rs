//! `#[derive(FromRow)]`: reads a struct's fields from a row's columns in the order they are
//! declared, each column named as its field (see `tenantry_kernel::row`).

use proc_macro::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, parse_macro_input};

/// Implements `tenantry_kernel::row::FromRow` for a struct with named fields: field `n` is
/// column `n` of the row, and the statement names it as the field is named.
#[proc_macro_derive(FromRow)]
pub fn derive_from_row(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let name = &input.ident;
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named.named.iter().filter_map(|f| f.ident.clone()),
            _ => return refuse(&input, "FromRow needs a struct with named fields"),
        },
        _ => return refuse(&input, "FromRow needs a struct"),
    };
    let reads = fields.map(|field| {
        let column = field.to_string();
        quote! { #field: row.next(#column)? }
    });
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        impl #impl_generics ::tenantry_kernel::row::FromRow for #name #ty_generics #where_clause {
            fn from_columns(
                row: &mut ::tenantry_kernel::row::Columns<'_>,
            ) -> ::core::result::Result<Self, ::tenantry_kernel::row::__DbErr> {
                ::core::result::Result::Ok(Self { #(#reads),* })
            }
        }
    }
    .into()
}

fn refuse(input: &DeriveInput, why: &str) -> TokenStream {
    syn::Error::new_spanned(&input.ident, why)
        .to_compile_error()
        .into()
}
